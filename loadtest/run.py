"""`make loadtest`: locust headless against a running stack, then plots and the SLO verdict.

    python -m loadtest.run --url http://127.0.0.1:8080 --users 6 --spawn-rate 2 \
        --duration 60s [--results DIR] [--photos DIR] [--classes DetectorUser,BrowserUser] \
        [--slo-max-failure-ratio 0.01] [--slo-max-p95-ms 5000] \
        [--slo-endpoint-p95-ms "POST /v1/classify=800"] [-- extra locust options]

Locust runs in its own process (it is a gevent program). Everything lands in one results
folder (default ``results/loadtest/<date-time>/``): locust's CSVs (``locust_stats.csv``,
``locust_stats_history.csv``, ``locust_failures.csv``, ``locust_exceptions.csv``), the
per-request log ``locust_requests.csv``, locust's HTML report ``report.html``, the plots
(``throughput.png``, ``latency.png``, ``latency_histogram.png``), ``summary.md`` and the SLO
verdict ``locust_slo.json``. Exit status: 0 when the SLO holds, 1 when it does not, 2 when
the run could not be made (nothing answers at the URL, bad options).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from loadtest.photos import DEFAULT_PHOTOS_DIR
from loadtest.report import summary_markdown, write_report
from loadtest.slo import DEFAULT_MAX_FAILURE_RATIO, DEFAULT_MAX_P95_MS

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO_ROOT / "loadtest" / "locustfile.py"
USER_CLASSES = ("DetectorUser", "ClassifierUser", "BrowserUser")
CSV_PREFIX = "locust"


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the stack's base URL")
    parser.add_argument("--users", type=int, default=6, help="concurrent simulated users")
    parser.add_argument("--spawn-rate", type=float, default=2.0, help="users started per second")
    parser.add_argument("--duration", default="60s", help="run time: 20s, 5m, 1h30m, ...")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="results folder (default: results/loadtest/<now>)",
    )
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS_DIR)
    parser.add_argument(
        "--classes",
        default=",".join(USER_CLASSES),
        help=f"comma-separated user classes among {', '.join(USER_CLASSES)}",
    )
    parser.add_argument("--slo-max-failure-ratio", type=float, default=DEFAULT_MAX_FAILURE_RATIO)
    parser.add_argument("--slo-max-p95-ms", type=float, default=DEFAULT_MAX_P95_MS)
    parser.add_argument(
        "--slo-endpoint-p95-ms",
        default="",
        help='per-endpoint p95 limits: "POST /v1/detect=5000,POST /v1/classify=800"',
    )
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument(
        "--stop-timeout",
        type=int,
        default=30,
        help="seconds users get to finish the request in flight when the time is up",
    )
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = sorted(set(classes) - set(USER_CLASSES))
    if unknown or not classes:
        parser.error(f"--classes: unknown {unknown or 'empty'}; choose among {USER_CLASSES}")
    args.classes = classes
    if args.users < 1:
        parser.error("--users must be at least 1")
    return args, extra


def locust_command(args: argparse.Namespace, results: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        args.url,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        args.duration,
        "--stop-timeout",
        str(args.stop_timeout),
        "--csv",
        str(results / CSV_PREFIX),
        "--csv-full-history",
        "--html",
        str(results / "report.html"),
        "--only-summary",
        "--photos",
        str(args.photos),
        "--top-k",
        str(args.top_k),
        "--slo-max-failure-ratio",
        str(args.slo_max_failure_ratio),
        "--slo-max-p95-ms",
        str(args.slo_max_p95_ms),
        "--slo-endpoint-p95-ms",
        args.slo_endpoint_p95_ms,
        *extra,
        *args.classes,
    ]


def stack_answers(url: str) -> str | None:
    """None when something answers HTTP at ``url``; else why not, in one line."""
    try:
        requests.get(url.rstrip("/") + "/healthz", timeout=5)
    except requests.RequestException as error:
        return f"nothing answers at {url} ({type(error).__name__}); start the stack: make run"
    return None


def run(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    problem = stack_answers(args.url)
    if problem:
        print(f"loadtest: {problem}", file=sys.stderr)
        return 2
    results = args.results or REPO_ROOT / "results" / "loadtest" / time.strftime("%Y%m%d-%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    command = locust_command(args, results, extra)
    (results / "command.txt").write_text(" ".join(command) + "\n")
    print(f"loadtest: {args.users} users against {args.url} for {args.duration} -> {results}")
    with open(results / "locust.log", "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        code = process.wait()
    request_log = results / f"{CSV_PREFIX}_requests.csv"
    if request_log.is_file():
        rows = write_report(results, request_log)
        print("\n" + summary_markdown(rows))
    verdict_path = results / f"{CSV_PREFIX}_slo.json"
    if verdict_path.is_file():
        verdict = json.loads(verdict_path.read_text())
        state = "PASSED" if verdict["passed"] else "FAILED"
        print(f"loadtest: SLO {state}: " + ("; ".join(verdict["violations"]) or "within limits"))
    elif code == 0:
        code = 2  # locust ended without judging the run: do not report success
        print("loadtest: locust wrote no SLO verdict", file=sys.stderr)
    print(f"loadtest: results in {results} (open report.html; plots *.png)")
    return code


if __name__ == "__main__":
    sys.exit(run())
