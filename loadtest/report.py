"""Plots and a summary of a load test from its request log (one CSV row per request).

    python -m loadtest.report RESULTS_DIR [--request-log RESULTS_DIR/locust_requests.csv]

Writes into RESULTS_DIR: ``throughput.png`` (answers per second over time, per endpoint, and
failures), ``latency.png`` (p50/p95/p99 over time, per endpoint with 20 requests or more),
``latency_histogram.png`` and ``summary.md`` / ``summary.json`` (per endpoint: requests,
failures, throughput, p50/p95/p99 from the exact response times, not locust's rounded
buckets).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np

ALL = "All requests"
PERCENTILES = (50, 95, 99)
MIN_REQUESTS_FOR_PANEL = 20
_DPI = 90


@dataclass(frozen=True)
class RequestLog:
    """Parallel arrays, one element per request, ``time_s`` from the first request's start."""

    time_s: np.ndarray
    name: np.ndarray
    latency_ms: np.ndarray
    ok: np.ndarray

    @property
    def duration_s(self) -> float:
        if not len(self.time_s):
            return 0.0
        return float(max((self.time_s + self.latency_ms / 1000).max(), 1e-9))

    def names(self) -> list[str]:
        """Endpoints, busiest first."""
        names, counts = np.unique(self.name, return_counts=True)
        return [str(n) for n, _ in sorted(zip(names, counts, strict=True), key=lambda x: -x[1])]


def read_request_log(path: Path) -> RequestLog:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    start = np.array([float(r["start_time"]) for r in rows])
    origin = start.min() if len(start) else 0.0
    return RequestLog(
        time_s=start - origin,
        name=np.array([r["name"] for r in rows], dtype=object),
        latency_ms=np.array([float(r["response_time_ms"]) for r in rows]),
        ok=np.array([r["ok"] == "1" for r in rows], dtype=bool),
    )


@dataclass(frozen=True)
class EndpointSummary:
    name: str
    requests: int
    failures: int
    throughput_rps: float  # successful answers per second of the run
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def summarise(log: RequestLog) -> list[EndpointSummary]:
    """One row per endpoint plus a last row for all requests together."""
    duration = log.duration_s or 1.0
    rows = []
    for name in [*log.names(), ALL]:
        mask = np.ones(len(log.name), dtype=bool) if name == ALL else log.name == name
        latencies = log.latency_ms[mask]
        quantiles = (
            [float(np.percentile(latencies, q)) for q in PERCENTILES]
            if len(latencies)
            else [None] * len(PERCENTILES)
        )
        rows.append(
            EndpointSummary(
                name=name,
                requests=int(mask.sum()),
                failures=int((~log.ok[mask]).sum()),
                throughput_rps=float(log.ok[mask].sum() / duration),
                p50_ms=quantiles[0],
                p95_ms=quantiles[1],
                p99_ms=quantiles[2],
                max_ms=float(latencies.max()) if len(latencies) else None,
            )
        )
    return rows


def summary_markdown(rows: list[EndpointSummary]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    lines = [
        "| endpoint | requests | failures | answers/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.requests} | {r.failures} | {r.throughput_rps:.2f} | "
            f"{ms(r.p50_ms)} | {ms(r.p95_ms)} | {ms(r.p99_ms)} | {ms(r.max_ms)} |"
        )
    return "\n".join(lines) + "\n"


def window_seconds(duration_s: float) -> float:
    """About 60 points over the run, at least one second each."""
    return max(1.0, math.ceil(duration_s / 60))


def _windows(log: RequestLog, window_s: float) -> np.ndarray:
    """Window index of every request, by the time its answer came back."""
    return ((log.time_s + log.latency_ms / 1000) // window_s).astype(int)


def plot_throughput(log: RequestLog, path: Path) -> None:
    window_s = window_seconds(log.duration_s)
    windows = _windows(log, window_s)
    count = int(windows.max()) + 1 if len(windows) else 1
    starts = np.arange(count) * window_s
    # The last window ends with the run, usually before a full window has passed.
    widths = np.clip(log.duration_s - starts, 1e-3, window_s)
    x = starts + widths / 2
    fig, ax = plt.subplots(figsize=(8, 3.6))
    names = log.names()
    for name in names:
        mask = (log.name == name) & log.ok
        ax.plot(x, np.bincount(windows[mask], minlength=count) / widths, label=name)
    if len(names) > 1:
        total = np.bincount(windows[log.ok], minlength=count) / widths
        ax.plot(x, total, "k", linewidth=1.8, label="all endpoints")
    failed = ~log.ok
    if failed.any():
        ax.plot(x, np.bincount(windows[failed], minlength=count) / widths, "r--", label="failures")
    ax.set(xlabel="time (s)", ylabel="answers per second", title="Throughput (successful answers)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)


def plot_latency(log: RequestLog, path: Path) -> None:
    window_s = window_seconds(log.duration_s)
    windows = _windows(log, window_s)
    # A panel per endpoint that saw enough requests for percentiles to mean something.
    names = [n for n in log.names() if (log.name == n).sum() >= MIN_REQUESTS_FOR_PANEL]
    names = names or log.names()[:1]
    fig, axes = plt.subplots(
        len(names), 1, figsize=(8, 1.9 * len(names) + 0.8), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], names, strict=True):
        mask = log.name == name
        points = {q: [] for q in PERCENTILES}
        times = []
        for window in np.unique(windows[mask]):
            latencies = log.latency_ms[mask & (windows == window)]
            times.append((window + 0.5) * window_s)
            for q in PERCENTILES:
                points[q].append(np.percentile(latencies, q))
        for q, style in zip(PERCENTILES, ("-", "--", ":"), strict=True):
            ax.plot(times, points[q], style, marker=".", label=f"p{q}")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", ncol=3)
    axes[-1, 0].set_xlabel(f"time (s), {window_s:g} s windows")
    fig.suptitle("Latency percentiles over time", fontsize=10)
    _save(fig, path)


def plot_histogram(log: RequestLog, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    positive = log.latency_ms[log.latency_ms > 0]
    if len(positive):
        low, high = max(positive.min(), 0.1), max(positive.max(), 1.0)
        bins = np.geomspace(low, high * 1.01, 50)
        for name in log.names():
            values = log.latency_ms[(log.name == name) & (log.latency_ms > 0)]
            ax.hist(values, bins=bins, histtype="step", linewidth=1.4, label=name)
        ax.set_xscale("log")
    ax.set(xlabel="response time (ms, log scale)", ylabel="requests", title="Latency histogram")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)


def write_report(results_dir: Path, request_log: Path) -> list[EndpointSummary]:
    """Every plot and the summary of ``request_log`` into ``results_dir``."""
    log = read_request_log(request_log)
    rows = summarise(log)
    (results_dir / "summary.json").write_text(
        json.dumps([asdict(r) for r in rows], indent=2) + "\n"
    )
    (results_dir / "summary.md").write_text(summary_markdown(rows))
    if len(log.time_s):
        plot_throughput(log, results_dir / "throughput.png")
        plot_latency(log, results_dir / "latency.png")
        plot_histogram(log, results_dir / "latency_histogram.png")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--request-log", type=Path, default=None)
    args = parser.parse_args(argv)
    request_log = args.request_log or args.results_dir / "locust_requests.csv"
    if not request_log.is_file():
        print(f"report: no request log at {request_log}", file=sys.stderr)
        return 2
    rows = write_report(args.results_dir, request_log)
    sys.stdout.write(summary_markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
