"""The speed goals of issue 12, judged from one run's results.json: met, or the exact gap.

Pure functions of the results (no I/O): the table ``publish`` puts at the head of every
generated block, so each run says by itself what it showed.

- peers: the stack's images/s at the highest concurrency over the best peer's, at a lower
  p95: 1.3x on the sample photos, 2x on phone photos;
- ceiling: the classifier stack over the best exact fp32 bare ceiling (no decoding): 0.9x;
- detector: the detector stack at saturation (its best level) over its best ceiling: 0.95x;
- one client: the stack's p50 within 10 ms of the bare model at batch 1 plus decoding, which
  is the ceiling run with the services' input path at batch 1 in the replicas' layout.

Where a ceiling goal is missed, the row names what decoding and preprocessing alone leave
(the same network with the services' input path in its loop, measured in the same run) and
what the load client's CPU leaves of that: the share of the gap no HTTP server could close on
these cores.
"""

from __future__ import annotations

from loadtest.bench.cpu_split import CLIENT, REPLICA_GROUPS
from loadtest.bench.peer_catalog import PEERS
from loadtest.bench.results_view import fastest_ceiling, find_run, level

PEER_GOAL = {"sample": 1.3, "phone": 2.0}
CEILING_GOAL = 0.9
DETECTOR_GOAL = 0.95
LATENCY_GOAL_MS = 10.0
STACKS = {"stack": "eager (default)", "stack-compiled": "`*_COMPILE=1`"}


def _rate(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _met(ok: bool) -> str:
    return "**yes**" if ok else "no"


def _model_name(results: dict, task: str) -> str:
    return "ResNet18" if task == "classify" else results["settings"].get("detector_model", "")


def _kind(ceiling: dict) -> str:
    return "compiled" if ceiling.get("compiled") else "eager"


def _client_ms(level: dict) -> float | None:
    return (level.get("cpu_ms_per_image") or {}).get(CLIENT)


def attainable(decoding_rate: float, client_ms: float | None, cpus: int) -> float:
    """Images/s left for a server once its own decoding is counted (``decoding_rate``, the
    ceiling with the input path) and the load client's CPU per image is taken out of the
    same cores: 1 / (1 / rate + client ms / (1000 x cpus))."""
    if not client_ms:
        return decoding_rate
    return 1 / (1 / decoding_rate + client_ms / (1000 * cpus))


def _model_thread_note(ours: dict, bare: dict | None) -> str:
    """Where the replicas' CPU went, when the run measured their model threads apart: the
    model's thread per image against the CPU per image (its cores over its rate) of the
    fastest bare ceiling compiled or eager as that stack is, and the request threads."""
    model_ms = sum((ours.get("model_thread_ms_per_image") or {}).values())
    if not model_ms or bare is None:
        return ""
    per_image = ours.get("cpu_ms_per_image") or {}
    replicas_ms = sum(per_image.get(group, 0.0) for group in REPLICA_GROUPS)
    ceiling_ms = 1000 * bare["processes"] * bare["threads"] / bare["best"]["images_per_s"]
    return (
        f". Inside the replicas the model's thread took {model_ms:.1f} ms of CPU per image, "
        f"{model_ms / ceiling_ms:.2f}x the {_kind(bare)} bare ceiling's {ceiling_ms:.1f} "
        f"({bare['processes']} x {bare['threads']}, batch {bare['best']['batch']}); the request "
        f"threads (HTTP, multipart, decoding, preprocessing, JSON) {replicas_ms - model_ms:.1f}"
    )


def peer_rows(results: dict) -> list[list[str]]:
    top = max(results["settings"]["concurrency"])
    photo_set = results["settings"].get("photo_set", "sample")
    target = PEER_GOAL.get(photo_set, PEER_GOAL["sample"])
    peers = [
        (name, lv)
        for name in PEERS
        if (lv := level(find_run(results, name, "classify"), top)) and lv["images_per_s"]
    ]
    if not peers:
        return []
    best_name, best = max(peers, key=lambda item: item[1]["images_per_s"])
    rows = []
    for stack, label in STACKS.items():
        ours = level(find_run(results, stack, "classify"), top)
        if ours is None:
            continue
        ratio = ours["images_per_s"] / best["images_per_s"]
        lower_p95 = ours["p95_ms"] is not None and all(
            lv["p95_ms"] is None or ours["p95_ms"] < lv["p95_ms"] for _, lv in peers
        )
        rows.append(
            [
                f"≥ {target:g}x the best peer at {top} clients, {photo_set} photos, lower p95",
                f"{label}: {_rate(ours['images_per_s'])} images/s, p95 {ours['p95_ms']:.0f} ms; "
                f"best peer {PEERS[best_name].label}: {_rate(best['images_per_s'])}, p95 "
                f"{best['p95_ms']:.0f}: **{ratio:.2f}x**"
                + ("" if lower_p95 else "; a peer's p95 is lower"),
                _met(ratio >= target and lower_p95),
            ]
        )
    return rows


def ceiling_rows(results: dict, task: str) -> list[list[str]]:
    """Classifier: the stack at the highest concurrency against the best bare ceiling.
    Detector: the stack at its best level (saturation) against the same."""
    bare = fastest_ceiling(results, task)
    if bare is None:
        return []
    cpus = results.get("machine", {}).get("cpus") or 1
    top = max(results["settings"]["concurrency"])
    target = CEILING_GOAL if task == "classify" else DETECTOR_GOAL
    model = _model_name(results, task)
    decoding = fastest_ceiling(results, task, with_decoding=True, compiled=True)
    where = f"at {top} clients" if task == "classify" else "at saturation (its best level)"
    rows = []
    for stack, label in STACKS.items():
        run = find_run(results, stack, task)
        if run is None or not run["levels"]:
            continue
        if task == "classify":
            ours = level(run, top)
        else:
            ours = max(run["levels"], key=lambda lv: lv["images_per_s"])
        if ours is None:
            continue
        ratio = ours["images_per_s"] / bare["best"]["images_per_s"]
        measured = (
            f"{label}: {_rate(ours['images_per_s'])} images/s (c={ours['concurrency']}) "
            f"against {_rate(bare['best']['images_per_s'])} (bare, {bare['processes']} x "
            f"{bare['threads']}, {_kind(bare)}, batch "
            f"{bare['best']['batch']}): **{ratio:.2f}x**"
        )
        if decoding and ratio < target:
            rate = decoding["best"]["images_per_s"]
            client = _client_ms(ours)
            left = attainable(rate, client, cpus)
            measured += (
                f". With the services' decoding and preprocessing in the loop the same "
                f"network reaches {_rate(rate)} ({rate / bare['best']['images_per_s']:.2f}x"
                " the bare ceiling)"
                + (
                    f"; less the load client's {client:.1f} ms of CPU per image, "
                    f"{_rate(left)} ({left / bare['best']['images_per_s']:.2f}x)"
                    if client
                    else ""
                )
                + f": the stack is at {ours['images_per_s'] / left:.2f}x of what is left"
                + _model_thread_note(
                    ours, fastest_ceiling(results, task, compiled=stack == "stack-compiled")
                )
            )
        goal = f"{model} ≥ {target:g}x its best exact fp32 ceiling, {where}"
        rows.append([goal, measured, _met(ratio >= target)])
    return rows


def latency_rows(results: dict, task: str) -> list[list[str]]:
    """At one client, each stack's p50 against the bare network at batch 1 in the replicas'
    layout (one thread) with the services' decoding, compiled or not as that stack is."""
    model = _model_name(results, task)
    rows = []
    for stack, label in STACKS.items():
        ours = level(find_run(results, stack, task), 1)
        reference = fastest_ceiling(
            results, task, with_decoding=True, compiled=stack == "stack-compiled"
        )
        if ours is None or ours["p50_ms"] is None or reference is None:
            continue
        batch_1 = next((row for row in reference["per_batch"] if row["batch"] == 1), None)
        if batch_1 is None:
            continue
        over = ours["p50_ms"] - batch_1["batch_p50_ms"]
        rows.append(
            [
                f"{model} at 1 client: p50 within {LATENCY_GOAL_MS:g} ms of the bare model at "
                "batch 1 plus decoding",
                f"{label}: p50 {ours['p50_ms']:.1f} ms against {batch_1['batch_p50_ms']:.1f} "
                f"(decode + preprocess + forward, {reference['threads']} thread): "
                f"**{over:+.1f} ms**",
                _met(over <= LATENCY_GOAL_MS),
            ]
        )
    return rows


def goals_section(results: dict) -> list[str]:
    """The goals table of this run, or nothing when it measured none of them."""
    rows = peer_rows(results)
    for task in ("classify", "detect"):
        rows += ceiling_rows(results, task) + latency_rows(results, task)
    if not rows:
        return []
    return [
        "Against the speed goals (issue 12), from this run alone (`loadtest/bench/goals.py`):",
        "",
        "| goal | measured | met? |",
        "|---|---|---|",
        *(f"| {goal} | {measured} | {met} |" for goal, measured, met in rows),
        "",
    ]
