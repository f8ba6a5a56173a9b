"""How far two runs of the detector agree on the same photos (precision and decode fidelity)."""

from __future__ import annotations

MATCH_IOU = 0.5
# Low enough that untrained stand-in weights leave detections to compare.
DETECTION_PARAMS = {"conf_threshold": 0.1, "iou_threshold": 0.45, "max_detections": 100}
CORNERS = ("x1", "y1", "x2", "y2")


def iou(a: dict, b: dict) -> float:
    ax1, ay1, ax2, ay2 = (a["box"][k] for k in CORNERS)
    bx1, by1, bx2, by2 = (b["box"][k] for k in CORNERS)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def detector_agreement(reference: list[list[dict]], other: list[list[dict]]) -> dict:
    """Greedy one-to-one matching per photo: same class, IoU >= MATCH_IOU."""
    total, matched, score_diffs, corner_diffs = 0, 0, [], []
    for ref_boxes, other_boxes in zip(reference, other, strict=True):
        total += len(ref_boxes)
        free = list(other_boxes)
        for box in ref_boxes:
            same = [o for o in free if o["class_id"] == box["class_id"]]
            best = max(same, key=lambda o: iou(box, o), default=None)
            if best is not None and iou(box, best) >= MATCH_IOU:
                matched += 1
                score_diffs.append(abs(box["confidence"] - best["confidence"]))
                corner_diffs.append(max(abs(box["box"][k] - best["box"][k]) for k in CORNERS))
                free.remove(best)
    return {
        "detections": total,
        "extra": sum(len(o) for o in other) - matched,
        "matched": matched / total if total else 1.0,
        "score_max_abs": max(score_diffs, default=0.0),
        "corner_max_abs_px": max(corner_diffs, default=0.0),  # of the matched boxes
    }
