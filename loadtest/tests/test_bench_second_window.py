"""A disturbed window is measured once more: the CPU idle at the highest concurrency, or
the hypervisor stealing the CPU at any level."""

from __future__ import annotations

import json

from loadtest.bench import publish, run_bench
from loadtest.bench.contenders import Endpoint
from loadtest.photos import DEFAULT_PHOTOS_DIR


def window(concurrency: int, rate: float, busy_s: float, steal: float = 0.01) -> dict:
    """A level of a 10 s window on 2 cpus whose processes used ``busy_s`` CPU seconds."""
    return {
        "concurrency": concurrency,
        "window_s": 10.0,
        "answers": 100,
        "failures": 0,
        "images_per_s": rate,
        "p50_ms": 100.0,
        "p95_ms": 200.0,
        "p99_ms": 250.0,
        "mean_ms": 110.0,
        "client_cpu_ms_per_request": 1.0,
        "first_failure": None,
        "cpu_s": {"server": busy_s - 1.0, "load client": 1.0},
        "cpu_ms_per_image": {"server": 10 * (busy_s - 1.0), "load client": 10.0},
        "steal": steal,
    }


def bench_measuring(tmp_path, monkeypatch, windows: list[dict]) -> tuple[run_bench.Bench, list]:
    """A Bench on 2 cpus whose measure() hands out ``windows`` in order (no server)."""
    monkeypatch.setattr(run_bench, "weights_summary", lambda *args: "stand-in")
    args = run_bench.parse_args(
        [
            "--weights-dir",
            str(tmp_path),
            "--photos",
            str(DEFAULT_PHOTOS_DIR),
            "--concurrency",
            "1,16",
        ]
    )
    bench = run_bench.Bench(args, tmp_path)
    bench.results["machine"]["cpus"] = 2
    asked: list[int] = []

    def measure(contender, task, endpoint, concurrency):
        asked.append(concurrency)
        return windows[len(asked) - 1]

    monkeypatch.setattr(bench, "measure", measure)
    return bench, asked


ENDPOINT = Endpoint("http://127.0.0.1:1", send=None, check=None, settings={"processes": "1"})


def test_an_idle_highest_level_gets_a_second_window_and_keeps_the_first(tmp_path, monkeypatch):
    # 16.4 CPU seconds of 20 = 82 % busy: under 95 %, so c=16 is measured again
    first, second = window(16, 30.0, 16.4), window(16, 36.0, 19.8)
    bench, asked = bench_measuring(tmp_path, monkeypatch, [window(1, 10.0, 9.0), first, second])
    bench.load("stack", "classify", ENDPOINT, busy=0.0)

    assert asked == [1, 16, 16]
    levels = json.loads((tmp_path / "results.json").read_text())["runs"][0]["levels"]
    assert levels[-1]["images_per_s"] == 36.0
    assert levels[-1]["first_window"] == {
        "busy": 0.82,
        "images_per_s": 30.0,
        "p95_ms": 200.0,
        "answers": 100,
        "failures": 0,
        "steal": 0.01,
    }
    assert "first_window" not in levels[0]  # c=1 was neither idle at the top nor stolen from

    text = publish.markdown({**bench.results, "duration_s": 60})
    assert (
        "**Re-measured:** this stack (nginx + gunicorn replicas) at 16 clients (first window "
        "82% busy, 1% steal, 30.0 images/s)." in text
    )
    assert "Not saturated" not in text  # the second window saturated the CPU


def test_a_saturated_highest_level_is_measured_once(tmp_path, monkeypatch):
    bench, asked = bench_measuring(
        tmp_path, monkeypatch, [window(1, 10.0, 9.0), window(16, 36.0, 19.6)]
    )
    bench.load("stack", "classify", ENDPOINT, busy=0.0)
    assert asked == [1, 16]
    text = publish.markdown({**bench.results, "duration_s": 60})
    assert "Re-measured" not in text


def test_still_idle_after_the_second_window_is_flagged(tmp_path, monkeypatch):
    # one process behind one GIL: idle both times, so both the note and the flag
    windows = [window(1, 3.0, 9.0), window(16, 4.0, 11.0), window(16, 4.1, 11.2)]
    bench, asked = bench_measuring(tmp_path, monkeypatch, windows)
    bench.load("baseline", "classify", ENDPOINT, busy=0.0)
    assert asked == [1, 16, 16]
    text = publish.markdown({**bench.results, "duration_s": 60})
    assert "**Re-measured:** original write-up" in text
    assert "**Not saturated:** original write-up (Flask, model per request) (56%)" in text


def test_a_window_the_hypervisor_stole_from_is_measured_again_at_any_level(tmp_path, monkeypatch):
    # c=1 lost 30 % of the machine to other guests: measured again; c=16 is saturated
    windows = [window(1, 4.0, 9.0, steal=0.3), window(1, 10.0, 9.0), window(16, 36.0, 19.6)]
    bench, asked = bench_measuring(tmp_path, monkeypatch, windows)
    bench.load("litserve", "classify", ENDPOINT, busy=0.0)
    assert asked == [1, 1, 16]
    levels = bench.results["runs"][0]["levels"]
    assert [lv["images_per_s"] for lv in levels] == [10.0, 36.0]
    assert levels[0]["first_window"]["steal"] == 0.3
    text = publish.markdown({**bench.results, "duration_s": 60})
    assert "LitServe 0.2.19 at 1 client (first window 45% busy, 30% steal, 4.00 images/s)" in text
