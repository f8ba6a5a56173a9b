"""Admission control under overload: find the saturating load, send four times it, stop.

    python -m loadtest.bench.overload --weights-dir weights [--photos DIR] [--seconds 20]

The stack as ``make run`` starts it (nginx, two classifier replicas with their default
admission limits), on free ports. Phases, all closed-loop clients posting the sample photos:

1. saturation: 1, 2, 4, 8, 16 clients; the saturating level is the smallest one within
   5 % of the best throughput;
2. overload: four times that many clients; admitted answers (200) and refusals (503
   ``overloaded``) are counted and timed apart, anything else is a failure. A refused
   client waits the ``Retry-After`` second before its next request, as a well-behaved
   client does (one that retries at once only adds refusals, each a few ms of CPU);
3. recovery: the overload clients stop; one client at once measures how long until its
   latency is back within 1.5x the idle latency.

Goals (issue 11): admitted p99 at 4x <= 2x the p50 at saturation, refusals fast, no other
failure, recovery within a second. Prints a table and writes docs/overload.md (generated)
plus results/overload/<time>/results.json. Figures depend on the machine: the CPU is named.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests

from loadtest.bench.contenders import TOP_K
from loadtest.bench.run_bench import describe_machine
from loadtest.photos import Photo, load_photos

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "overload.md"
LEVELS = (1, 2, 4, 8, 16)
OVERLOAD_FACTOR = 4
IDLE_SLACK = 1.5  # recovered: latency within this factor of the idle p50
RETRY_AFTER_S = 1.0  # what the refusals' Retry-After says
RECOVERY_RUN = 5  # answers whose median must be normal for latency to count as recovered


@dataclass(frozen=True)
class Sample:
    start: float
    end: float
    status: int  # 0: no HTTP answer
    code: str  # the error code of a JSON error, "" otherwise

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


def send(session: requests.Session, url: str, photo: Photo) -> Sample:
    start = time.perf_counter()
    try:
        response = session.post(url, params={"top_k": TOP_K}, files=photo.multipart(), timeout=120)
        status = response.status_code
        code = "" if response.ok else response.json().get("error", {}).get("code", "")
    except (requests.RequestException, ValueError) as error:
        status, code = 0, type(error).__name__
    return Sample(start, time.perf_counter(), status, code)


def closed_loop(url: str, photos: list[Photo], clients: int, seconds: float) -> list[Sample]:
    """``clients`` threads sending back to back for ``seconds``; every answer is kept."""
    samples: list[Sample] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(offset: int) -> None:
        with requests.Session() as session:
            for photo in itertools.islice(itertools.cycle(photos), offset, None):
                if time.perf_counter() >= stop_at:
                    return
                sample = send(session, url, photo)
                with lock:
                    samples.append(sample)
                if sample.status == 503:
                    # A well-behaved client waits as told (Retry-After: 1) before trying again.
                    time.sleep(min(RETRY_AFTER_S, max(0.0, stop_at - time.perf_counter())))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarise(samples: list[Sample], seconds: float) -> dict:
    admitted = [s.ms for s in samples if s.status == 200]
    refused = [s.ms for s in samples if s.status == 503 and s.code == "overloaded"]
    failed = [
        s for s in samples if s.status != 200 and not (s.status == 503 and s.code == "overloaded")
    ]
    return {
        "answers": len(samples),
        "images_per_s": len(admitted) / seconds,
        "admitted": len(admitted),
        "admitted_p50_ms": percentile(admitted, 50),
        "admitted_p99_ms": percentile(admitted, 99),
        "refused": len(refused),
        "refused_p50_ms": percentile(refused, 50),
        "refused_p99_ms": percentile(refused, 99),
        "failed": len(failed),
        "first_failure": f"{failed[0].status} {failed[0].code}" if failed else None,
    }


def find_saturation(url: str, photos: list[Photo], seconds: float) -> tuple[int, list[dict]]:
    levels: list[dict] = []
    for clients in LEVELS:
        level = {
            "clients": clients,
            **summarise(closed_loop(url, photos, clients, seconds), seconds),
        }
        levels.append(level)
        print(
            f"  {clients:>2} clients: {level['images_per_s']:.1f} images/s, "
            f"p50 {level['admitted_p50_ms']:.0f} ms, refused {level['refused']}"
        )
    best = max(level["images_per_s"] for level in levels)
    saturating = next(level for level in levels if level["images_per_s"] >= 0.95 * best)
    return saturating["clients"], levels


def recovery(url: str, photos: list[Photo], idle_p50_ms: float, stopped_at: float) -> dict:
    """One client right after the overload clients stopped: when is latency normal again?"""
    samples = []
    with requests.Session() as session:
        for photo in itertools.islice(itertools.cycle(photos), 0, 200):
            samples.append(send(session, url, photo))
            if samples[-1].end - stopped_at > 5:
                break
    normal = IDLE_SLACK * idle_p50_ms
    recovered_at = samples[-1].end
    for index, sample in enumerate(samples):
        # Recovered: this answer and the median of the next few are normal again (one slow
        # answer later on is the machine's noise, not the overload's queue).
        following = [s.ms for s in samples[index : index + RECOVERY_RUN]]
        if sample.status == 200 and sample.ms <= normal and np.median(following) <= normal:
            recovered_at = sample.end
            break
    after = [s.ms for s in samples if s.end > recovered_at]
    return {
        "recovery_s": max(0.0, recovered_at - stopped_at),
        "normal_ms": normal,
        "first_request_ms": samples[0].ms,
        "p99_after_recovery_ms": percentile(after, 99),
    }


def render_doc(results: dict) -> str:
    sat, over, rec = results["saturation"], results["overload"], results["recovery"]
    machine = results["machine"]
    goal_p99 = 2 * sat["admitted_p50_ms"]
    rows = [
        ("idle, 1 client", results["idle"]),
        (f"saturation, {sat['clients']} clients", sat),
        (f"overload, {over['clients']} clients (4x)", over),
    ]
    lines = [
        "# Overload: admission control measured",
        "",
        "<!-- Generated by `python -m loadtest.bench.overload` (make bench-overload): "
        "do not edit. -->",
        "",
        f"Run {results['date']} on {machine['cpu']} ({machine['cpus']} CPUs; "
        f"{machine['cpu_flags']}), torch "
        f"{machine['torch']}. Stack as `make run` starts it: nginx, two classifier replicas "
        f"(ResNet18, {results['weights']}), each admitting `CLASSIFIER_QUEUE_LIMIT` "
        f"= {results['queue_limits']} requests (derived from the 500 ms budget at warm-up). "
        f"Closed-loop clients, {results['seconds']:.0f} s per phase, the sample photos; a "
        "refused client waits the 1 s its `Retry-After` asks for.",
        "",
        "| phase | images/s | admitted p50 ms | admitted p99 ms | refused (503) "
        "| refusal p50 / p99 ms | other failures |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows:
        refusal = (
            f"{row['refused_p50_ms']:.0f} / {row['refused_p99_ms']:.0f}" if row["refused"] else "–"
        )
        lines.append(
            f"| {name} | {row['images_per_s']:.1f} | {row['admitted_p50_ms']:.0f} | "
            f"{row['admitted_p99_ms']:.0f} | {row['refused']} | {refusal} | {row['failed']} |"
        )
    verdict = "met" if over["admitted_p99_ms"] <= goal_p99 else "missed"
    lines += [
        "",
        f"- Admitted p99 at 4x: **{over['admitted_p99_ms']:.0f} ms** against the goal of 2x the "
        f"saturation p50 = {goal_p99:.0f} ms: **{verdict}**.",
        f"- Refusals: p99 **{over['refused_p99_ms'] or 0:.0f} ms**, each a JSON 503 `overloaded` "
        "with `Retry-After: 1`, after nginx tried the other replica.",
        f"- Other failures under overload: **{over['failed']}**.",
        f"- Recovery: latency back within {IDLE_SLACK}x the idle p50 "
        f"({rec['normal_ms']:.0f} ms) **{rec['recovery_s']:.2f} s** after the overload clients "
        f"stopped (the first request was answered in {rec['first_request_ms']:.0f} ms; p99 "
        f"afterwards {rec['p99_after_recovery_ms'] or 0:.0f} ms).",
        "",
        "Saturation search:",
        "",
        "| clients | images/s | p50 ms | p99 ms |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {level['clients']} | {level['images_per_s']:.1f} | {level['admitted_p50_ms']:.0f} | "
        f"{level['admitted_p99_ms']:.0f} |"
        for level in results["levels"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", type=Path, default=REPO_ROOT / "weights")
    parser.add_argument("--photos", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--no-publish", action="store_true", help="leave docs/ alone")
    args = parser.parse_args(argv)
    photos = load_photos(args.photos)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = REPO_ROOT / "results" / "overload" / stamp
    out.mkdir(parents=True, exist_ok=True)

    from scripts.local_stack import run_stack

    with (
        tempfile.TemporaryDirectory() as work,
        run_stack(Path(work), args.weights_dir.resolve(), replicas=2) as stack,
    ):
        url = f"{stack.url}/v1/classify"
        entries = [
            requests.get(f"{r.url}/v1/models", timeout=10).json()["models"][0]
            for r in stack.replicas["classifier"]
        ]
        print("warming up; idle latency")
        closed_loop(url, photos, 2, 3)
        idle = summarise(closed_loop(url, photos, 1, args.seconds / 2), args.seconds / 2)
        print("saturation search")
        clients, levels = find_saturation(url, photos, args.seconds)
        saturation = next(level for level in levels if level["clients"] == clients)
        heavy = OVERLOAD_FACTOR * clients
        print(f"overload: {heavy} clients")
        overload = {
            "clients": heavy,
            **summarise(closed_loop(url, photos, heavy, args.seconds), args.seconds),
        }
        stopped_at = time.perf_counter()
        recovered = recovery(url, photos, idle["admitted_p50_ms"], stopped_at)
    results = {
        "date": stamp,
        "machine": describe_machine(),
        "weights": "trained" if entries[0]["weights"].get("trained") else "stand-in weights",
        "queue_limits": sorted({e["runtime"]["queue_limit"] for e in entries}),
        "seconds": args.seconds,
        "idle": idle,
        "levels": levels,
        "saturation": saturation,
        "overload": overload,
        "recovery": recovered,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = render_doc(results)
    print(text)
    if not args.no_publish:
        DOC.write_text(text)
        print(f"wrote {DOC.relative_to(REPO_ROOT)}")
    print(f"results: {out.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
