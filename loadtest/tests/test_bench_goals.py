"""The speed goals judged from a synthetic results.json: met, missed, and the exact gap."""

from __future__ import annotations

import pytest

from loadtest.bench import goals, publish
from loadtest.bench.peer_catalog import PEERS


def level(c, rate, p50, p95, client_ms=None):
    found = {"concurrency": c, "images_per_s": rate, "p50_ms": p50, "p95_ms": p95}
    if client_ms is not None:
        found["cpu_ms_per_image"] = {"classifier replicas": 40.0, "load client": client_ms}
    return found


def run(contender, task, *levels):
    return {"contender": contender, "task": task, "levels": list(levels)}


def ceiling(task, rate, *, compiled=False, with_decoding=False, batch_1_p50=None):
    per_batch = [{"batch": 8, "images_per_s": rate, "batch_p50_ms": 100.0}]
    if batch_1_p50 is not None:
        per_batch.insert(0, {"batch": 1, "images_per_s": rate / 2, "batch_p50_ms": batch_1_p50})
    return {
        "task": task,
        "processes": 2,
        "threads": 1,
        "compiled": compiled,
        "with_decoding": with_decoding,
        "per_batch": per_batch,
        "best": per_batch[-1],
    }


def results(runs, ceilings=None, photo_set="sample"):
    return {
        "machine": {"cpus": 2},
        "settings": {"concurrency": [1, 4, 16], "photo_set": photo_set},
        "runs": runs,
        "ceiling": ceilings or {},
    }


def test_the_stack_beats_the_best_peer_by_the_goal_only_at_a_lower_p95():
    runs = [
        run("stack", "classify", level(16, 40.0, 300, 400)),
        run("pytriton", "classify", level(16, 30.0, 600, 700)),
        run("litserve", "classify", level(16, 20.0, 700, 800)),
    ]
    [row] = goals.peer_rows(results(runs))
    assert "**1.33x**" in row[1] and PEERS["pytriton"].label in row[1]
    assert row[2] == "**yes**"

    slower_p95 = [*runs[:2], run("litserve", "classify", level(16, 20.0, 100, 350))]
    [row] = goals.peer_rows(results(slower_p95))
    assert "a peer's p95 is lower" in row[1] and row[2] == "no"


def test_phone_photos_need_twice_the_best_peer():
    runs = [
        run("stack-compiled", "classify", level(16, 50.0, 300, 400)),
        run("bentoml", "classify", level(16, 30.0, 600, 700)),
    ]
    [row] = goals.peer_rows(results(runs, photo_set="phone"))
    assert row[0].startswith("≥ 2x the best peer") and "**1.67x**" in row[1]
    assert row[2] == "no"
    assert goals.peer_rows(results(runs))[0][2] == "**yes**"  # 1.67x meets the sample goal


def test_a_missed_ceiling_names_what_decoding_and_the_client_leave():
    ceilings = {
        "classify": [
            ceiling("classify", 100.0, compiled=True),
            ceiling("classify", 200.0, compiled=True, with_decoding=True),  # never "the" ceiling
            ceiling("classify", 80.0, compiled=True, with_decoding=True),
        ]
    }
    runs = [run("stack", "classify", level(16, 60.0, 300, 400, client_ms=2.5))]
    [row] = goals.ceiling_rows(results(runs, ceilings), "classify")
    assert "against 100.0 (bare" in row[1] and "**0.60x**" in row[1] and row[2] == "no"
    # 1 / (1/200 + 2.5 ms / 2 cores) = 160 images/s left; the stack is at 60/160 of it
    assert "reaches 200.0 (2.00x" in row[1]
    assert "160.0 (1.60x)" in row[1] and "at 0.38x of what is left" in row[1]
    assert goals.attainable(200.0, 2.5, 2) == pytest.approx(160.0)
    assert goals.attainable(200.0, None, 2) == 200.0
    assert "model's thread" not in row[1]  # not measured apart in this run

    # The replicas' model thread measured apart, set against the CPU per image of the fastest
    # bare ceiling of the stack's kind: compiled, 2 x 1 cores over 100 images/s = 20 ms.
    measured = {**runs[0]["levels"][0], "model_thread_ms_per_image": {"classifier replicas": 21}}
    [row] = goals.ceiling_rows(
        results([run("stack-compiled", "classify", measured)], ceilings), "classify"
    )
    assert (
        "the model's thread took 21.0 ms of CPU per image, 1.05x the compiled bare ceiling's "
        "20.0 (2 x 1, batch 8)" in row[1]
    )
    assert "request threads (HTTP, multipart, decoding, preprocessing, JSON) 19.0" in row[1]
    # The eager stack against the fastest eager ceiling (none yet: nothing said), 2 / 80 = 25 ms.
    [row] = goals.ceiling_rows(results([run("stack", "classify", measured)], ceilings), "classify")
    assert "model's thread" not in row[1]
    ceilings["classify"].append(ceiling("classify", 80.0))
    [row] = goals.ceiling_rows(results([run("stack", "classify", measured)], ceilings), "classify")
    assert "0.84x the eager bare ceiling's 25.0" in row[1]


def test_the_detector_is_judged_at_its_best_level():
    ceilings = {"detect": [ceiling("detect", 10.0)]}
    runs = [run("stack", "detect", level(1, 5.0, 200, 250), level(4, 9.6, 400, 500))]
    [row] = goals.ceiling_rows(results(runs, ceilings), "detect")
    assert "0.95x" in row[0] and "(c=4)" in row[1] and "**0.96x**" in row[1]
    assert row[2] == "**yes**"
    assert "decoding and preprocessing" not in row[1]  # met: no gap to explain


def test_one_client_latency_against_batch_one_with_decoding_of_the_same_kind():
    ceilings = {
        "classify": [
            ceiling("classify", 50.0, with_decoding=True, batch_1_p50=40.0),
            ceiling("classify", 60.0, compiled=True, with_decoding=True, batch_1_p50=30.0),
        ]
    }
    runs = [
        run("stack", "classify", level(1, 20.0, 52.0, 60.0)),
        run("stack-compiled", "classify", level(1, 25.0, 38.0, 45.0)),
    ]
    eager, compiled = goals.latency_rows(results(runs, ceilings), "classify")
    assert "against 40.0" in eager[1] and "**+12.0 ms**" in eager[1] and eager[2] == "no"
    assert "against 30.0" in compiled[1] and "**+8.0 ms**" in compiled[1]
    assert compiled[2] == "**yes**"


def test_the_published_block_opens_with_the_goals_and_skips_runs_without_them():
    runs = [
        run("stack", "classify", level(16, 40.0, 300, 400)),
        run("pytriton", "classify", level(16, 30.0, 600, 700)),
    ]
    assert "Against the speed goals" in "\n".join(goals.goals_section(results(runs)))
    assert goals.goals_section(results([run("pytriton", "classify", level(16, 30, 1, 2))])) == []
    # the decoding rows are listed with the ceilings but never taken as the ceiling
    ceilings = {
        "classify": [
            ceiling("classify", 90.0),
            ceiling("classify", 120.0, compiled=True, with_decoding=True),
        ]
    }
    assert publish.ceiling_of(results(runs, ceilings), "classify", 2)["best"]["images_per_s"] == 90
    assert "decoding and preprocessing" in publish.layout_label(ceilings["classify"][1])
