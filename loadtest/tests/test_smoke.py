"""The load-test harness end to end: locust in its own process, as `make loadtest` runs it.

- the 20-second smoke run against the whole local stack (1 replica each, yolov3-tiny) must
  show zero failures and write every artifact;
- against a server that answers 200 with a wrong body, the SLO gate must fail the run.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from flask import Flask, jsonify
from werkzeug.serving import make_server

from scripts.local_stack import ROOM_FOR_EVERY_CLIENT, run_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

ARTIFACTS = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "locust_requests.csv",
    "locust_slo.json",
    "report.html",
    "throughput.png",
    "latency.png",
    "latency_histogram.png",
    "summary.md",
)


def run_loadtest(
    url: str, results: Path, photos: Path, *options: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.run",
            "--url",
            url,
            "--results",
            str(results),
            "--photos",
            str(photos),
            *options,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


def stats_rows(results: Path) -> dict[str, dict]:
    with open(results / "locust_stats.csv", newline="") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def test_smoke_run_against_the_local_stack(tmp_path, stack_weights_dir, images_dir):
    results = tmp_path / "loadtest"
    # A smoke run of the load-test tooling, not of admission control: room for every user.
    with run_stack(
        tmp_path / "stack", stack_weights_dir, replicas=1, env=ROOM_FOR_EVERY_CLIENT
    ) as stack:
        completed = run_loadtest(
            stack.url,
            results,
            images_dir,
            "--users",
            "3",
            "--spawn-rate",
            "3",
            "--duration",
            "20s",
            "--slo-max-failure-ratio",
            "0",
            "--slo-max-p95-ms",
            "5000",
        )
    output = completed.stdout[-4000:] + completed.stderr[-2000:]
    assert completed.returncode == 0, output
    verdict = json.loads((results / "locust_slo.json").read_text())
    assert verdict["passed"], output
    assert verdict["failures"] == 0 and verdict["requests"] > 10, verdict
    rows = stats_rows(results)
    for endpoint in ("POST /v1/detect", "POST /v1/classify", "GET /", "GET /v1/models"):
        assert int(rows[endpoint]["Request Count"]) > 0, sorted(rows)
        assert rows[endpoint]["Failure Count"] == "0", rows[endpoint]
    for name in ARTIFACTS:
        assert (results / name).stat().st_size > 0, name


def wrong_answers_app() -> Flask:
    app = Flask("wrong-answers")

    @app.get("/healthz")
    def healthz():
        return jsonify(status="alive")

    @app.post("/v1/classify")
    def classify():  # 200, but one prediction instead of top_k and no image size
        return jsonify(predictions=[{"label": "x", "class_id": 1, "confidence": 0.5}])

    return app


def test_the_gate_fails_a_run_whose_answers_are_wrong(tmp_path, images_dir):
    server = make_server("127.0.0.1", 0, wrong_answers_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        results = tmp_path / "loadtest"
        completed = run_loadtest(
            f"http://127.0.0.1:{server.server_port}",
            results,
            images_dir,
            "--users",
            "1",
            "--duration",
            "4s",
            "--classes",
            "ClassifierUser",
        )
    finally:
        server.shutdown()
    assert completed.returncode == 1, completed.stdout[-3000:]
    verdict = json.loads((results / "locust_slo.json").read_text())
    assert not verdict["passed"] and verdict["failures"] == verdict["requests"] > 0
    failures = (results / "locust_failures.csv").read_text()
    assert "wrong content" in failures and "expected top_k=5" in failures


def test_nothing_listening_is_reported_before_locust_starts(tmp_path, images_dir):
    completed = run_loadtest("http://127.0.0.1:9", tmp_path / "r", images_dir, "--duration", "1s")
    assert completed.returncode == 2
    assert "nothing answers at http://127.0.0.1:9" in completed.stderr
