"""Plots and summary from a request log."""

from __future__ import annotations

import csv
import json

from loadtest.report import ALL, read_request_log, summarise, window_seconds, write_report
from loadtest.requestlog import FIELDS as REQUEST_LOG_FIELDS


def write_log(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUEST_LOG_FIELDS)
        writer.writerows(rows)


def test_summary_and_plots(tmp_path):
    rows = []
    for i in range(100):  # 10 s of classify at 10/s, 1..100 ms
        rows.append([f"{1000 + i / 10:.4f}", "POST /v1/classify", f"{i + 1}", 500, 1, ""])
    for i in range(20):  # detect, 2 failures
        ok = int(i not in (3, 7))
        rows.append(
            [
                f"{1000 + i / 2:.4f}",
                "POST /v1/detect",
                "200",
                900,
                ok,
                "" if ok else "wrong content: no 'detections' list",
            ]
        )
    log_path = tmp_path / "locust_requests.csv"
    write_log(log_path, rows)

    summary = {row.name: row for row in write_report(tmp_path, log_path)}

    classify = summary["POST /v1/classify"]
    assert (classify.requests, classify.failures) == (100, 0)
    assert classify.p50_ms == 50.5 and classify.max_ms == 100
    assert abs(classify.p99_ms - 99.01) < 1e-6
    detect = summary["POST /v1/detect"]
    assert (detect.requests, detect.failures) == (20, 2)
    assert summary[ALL].requests == 120 and summary[ALL].failures == 2
    for name in ("throughput.png", "latency.png", "latency_histogram.png", "summary.md"):
        assert (tmp_path / name).stat().st_size > 1000 or name == "summary.md"
    assert json.loads((tmp_path / "summary.json").read_text())[0]["name"] == "POST /v1/classify"


def test_an_empty_log_gives_a_summary_without_plots(tmp_path):
    log_path = tmp_path / "locust_requests.csv"
    write_log(log_path, [])
    rows = write_report(tmp_path, log_path)
    assert rows[-1].requests == 0 and rows[-1].p95_ms is None
    assert not (tmp_path / "latency.png").exists()


def test_windows():
    assert window_seconds(20) == 1
    assert window_seconds(600) == 10
    log_path_rows = read_request_log  # the reader is exercised above
    assert callable(log_path_rows)


def test_summarise_counts_throughput_over_the_whole_run(tmp_path):
    log_path = tmp_path / "log.csv"
    write_log(log_path, [["0", "a", "1000", 1, 1, ""], ["1", "a", "1000", 1, 1, ""]])
    rows = summarise(read_request_log(log_path))
    assert rows[0].throughput_rps == 1.0  # 2 answers over 2 s (last one ends at 2 s)
