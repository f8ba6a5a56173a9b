"""The benchmark's tables, ratios and docs block, from a synthetic results.json."""

from __future__ import annotations

import json

from loadtest.bench import publish


def level(c, rate, p95):
    return {
        "concurrency": c,
        "window_s": 20,
        "answers": 100,
        "failures": 0,
        "images_per_s": rate,
        "p50_ms": p95 / 2,
        "p95_ms": p95,
        "p99_ms": p95 * 1.2,
        "mean_ms": p95 / 2,
        "client_cpu_ms_per_request": 1.0,
        "first_failure": None,
    }


def ceiling(processes, threads, rate):
    row = {
        "batch": 8,
        "images_per_s": rate,
        "batch_p50_ms": 200.0,
        "batch_p95_ms": 210.0,
        "batch_p99_ms": 220.0,
        "iterations": 50,
    }
    return {
        "task": "classify",
        "model": "resnet18",
        "processes": processes,
        "threads": threads,
        "per_batch": [row],
        "best": row,
    }


RESULTS = {
    "started": "2026-01-01 00:00:00 UTC",
    "duration_s": 600,
    "command": "python -m loadtest.bench",
    "machine": {"cpu": "AMD EPYC", "cpus": 2, "memory": "24 GiB"},
    "settings": {
        "concurrency": [1, 4],
        "warmup_s": 3,
        "duration_s": 20,
        "photos": ["dog.jpg"],
        "seed": 7,
        "detector_model": "yolov3",
        "weights": "resnet18.pth (untrained stand-in)",
    },
    "ceiling": {"classify": [ceiling(1, 2, 40.0), ceiling(2, 1, 44.0)]},
    "runs": [
        {
            "contender": "stack",
            "task": "classify",
            "settings": {"processes": "2 replicas"},
            "levels": [level(1, 20.0, 60), level(4, 36.0, 150)],
        },
        {
            "contender": "torchserve",
            "task": "classify",
            "settings": {"processes": "2 workers"},
            "levels": [level(1, 10.0, 120), level(4, 30.0, 300)],
        },
    ],
    "skipped": [{"contender": "litserve", "task": "classify", "reason": "boom: exact reason"}],
}


def test_tables_and_ratios():
    text = publish.markdown(RESULTS)
    assert "| this stack (nginx + gunicorn replicas) | 4 | 36.0 | 75 | 150 | 180 | 0/100 |" in text
    # c=4: 36/40 of the ceiling, 36/44 of 2 processes, 36/30 of TorchServe, p95 150/300
    assert "| 4 | 36.0 | 0.90x | 0.82x | 1.20x | 0.50x |" in text
    assert "litserve (classify): `boom: exact reason`" in text
    assert "| 2 processes x 1 thread (sum), contiguous | 8 | **44.0** |" in text


def test_readme_table_uses_the_highest_concurrency():
    table = publish.readme_table(RESULTS)
    assert "4 concurrent clients" in table
    # the faster of both layouts, as the goals take it: 36 / 44
    assert "| bare model, no HTTP (ceiling, 2 x 1, eager, batch 8) | 44.0 | - | 0.82x |" in table
    assert "| TorchServe 0.12.0 | 30.0 | 300 | 1.20x |" in table


def test_the_docs_block_is_replaced_in_place(tmp_path, monkeypatch):
    doc = f"# Benchmarks\n\nprose before\n\n{publish.BEGIN}\nold\n{publish.END}\n\nprose after\n"
    replaced = publish.replace_block(doc, "new table")
    assert "old" not in replaced and "new table" in replaced
    assert replaced.startswith("# Benchmarks\n\nprose before") and "prose after" in replaced
    assert publish.replace_block("# B\n", "x").endswith(f"{publish.BEGIN}\n\nx\n\n{publish.END}\n")

    monkeypatch.setattr(publish, "DOCS", tmp_path / "benchmarks.md")
    monkeypatch.setattr(publish, "DOCS_IMG", tmp_path / "img")
    (tmp_path / "benchmarks.md").write_text(doc)
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(RESULTS))
    publish.write_outputs(results, publish=True)
    assert (tmp_path / "img" / "bench_classify.png").stat().st_size < 80_000
    assert "prose after" in (tmp_path / "benchmarks.md").read_text()
    assert (tmp_path / "run" / "readme_table.md").read_text().startswith("| ResNet18")


def test_the_ceiling_is_the_faster_memory_format():
    from loadtest.bench.publish import ceiling_of

    def entry(memory_format: str, rate: float) -> dict:
        return {"processes": 1, "memory_format": memory_format, "best": {"images_per_s": rate}}

    results = {"ceiling": {"classify": [entry("contiguous", 60.0), entry("channels_last", 80.0)]}}
    assert ceiling_of(results, "classify", 1)["memory_format"] == "channels_last"
    assert ceiling_of(results, "classify", 2) is None


def test_the_cpu_table_splits_the_stack_and_names_the_client():
    stack_level = {
        **level(16, 60.0, 300),
        "cpu_s": {"classifier replicas": 30.0, "load client": 1.5, "nginx": 1.0, "other work": 0.5},
        "cpu_ms_per_image": {
            "classifier replicas": 25.0,
            "load client": 1.25,
            "nginx": 0.83,
            "other work": 0.42,
        },
    }
    results = {
        **RESULTS,
        "runs": [{**RESULTS["runs"][0], "levels": [level(1, 20, 60), stack_level]}],
    }
    text = publish.markdown(results)
    # 33 s of CPU in a 20 s window on 2 cpus = 82 %; the stack's own processes 25.8 ms/image
    row = (
        "| this stack (nginx + gunicorn replicas) | 16 | 60.0 | 82% | **25.8** "
        "(classifier replicas 25.0, nginx 0.8) | 1.2 | 0.4 |"
    )
    assert row in text
    assert "**Not saturated:** this stack (nginx + gunicorn replicas) (82%)" in text
    assert "Where the CPU went" not in publish.markdown(RESULTS)  # runs without CPU figures


def test_a_saturated_run_is_not_flagged():
    busy_level = {
        **level(16, 60.0, 300),
        "cpu_s": {"classifier replicas": 38.0, "load client": 1.5, "nginx": 0.5},
        "cpu_ms_per_image": {"classifier replicas": 31.7, "load client": 1.25, "nginx": 0.4},
    }
    results = {**RESULTS, "runs": [{**RESULTS["runs"][0], "levels": [busy_level]}]}
    text = publish.markdown(results)
    assert "| 16 | 60.0 | 100% |" in text
    assert "Not saturated" not in text
    assert "model thread" not in text  # not measured apart: nothing said


def test_the_cpu_table_splits_the_replicas_into_model_and_request_threads():
    busy_level = {
        **level(16, 60.0, 300),
        "cpu_s": {"classifier replicas": 38.0, "load client": 1.5, "nginx": 0.5},
        "cpu_ms_per_image": {"classifier replicas": 31.7, "load client": 1.25, "nginx": 0.4},
        "model_thread_ms_per_image": {"classifier replicas": 25.2},
    }
    results = {**RESULTS, "runs": [{**RESULTS["runs"][0], "levels": [busy_level]}]}
    text = publish.markdown(results)
    assert "(classifier replicas 31.7 = model thread 25.2 + request threads 6.5, nginx 0.4)" in text


def test_steal_time_is_published_beside_the_cpu_table():
    stolen = {
        **level(16, 50.0, 300),
        "cpu_s": {"classifier replicas": 33.0, "load client": 1.5},
        "cpu_ms_per_image": {"classifier replicas": 33.0, "load client": 1.5},
        "steal": 0.12,
    }
    results = {**RESULTS, "runs": [{**RESULTS["runs"][0], "levels": [stolen]}]}
    text = publish.markdown(results)
    assert "ready to use but the hypervisor gave to other guests" in text
    assert "this stack (nginx + gunicorn replicas) 12%." in text
    assert "Steal time" not in publish.markdown(
        {**RESULTS, "runs": [{**RESULTS["runs"][0], "levels": [{**stolen, "steal": None}]}]}
    )
