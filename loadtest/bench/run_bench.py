"""`make bench`: the stack against its ceiling, the original approach and two peers, in one run.

    python -m loadtest.bench [--weights-dir weights] [--concurrency 1,4,16] [--duration 20]
        [--warmup 3] [--only ceiling,stack,baseline,litserve,torchserve,rayserve,bentoml,pytriton]
        [--tasks classify,detect] [--detector-model yolov3] [--stack-url URL]
        [--results DIR] [--no-publish]

One after the other, on the same machine, photos and weights files: the ceiling (bare model,
loadtest/bench/ceiling.py), this stack through nginx, the original write-up's Flask servers
(loadtest/bench/baseline), LitServe and TorchServe (their own venv, .venv-bench). Each is
started on free loopback ports, loaded at every concurrency level, and stopped before the
next starts. A peer that cannot run is recorded with the exact reason; the others go on.

Writes results/bench/<date-time>/ (results.json, results.md, plots, server logs) and, unless
--no-publish, the generated part of docs/benchmarks.md and docs/img/bench_*.png
(docs/benchmarks-<name>.md and docs/img/bench_<name>_*.png with --publish-as NAME; the
phone-photo set publishes as ``phone``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from loadtest.bench import contenders
from loadtest.bench.client import run_level
from loadtest.bench.cpu_split import (
    SATURATED_BUSY,
    STEAL_DISTURBED,
    busy_fraction,
    cpu_split,
    host_ticks,
    model_thread_split,
    per_image_ms,
    process_times,
    steal_fraction,
)
from loadtest.bench.peer_catalog import PEERS
from loadtest.bench.peer_venv import PeerUnavailable, ensure_peer_venv
from loadtest.bench.publish import BUSY_WARNING, document_path, write_outputs
from loadtest.phone_photos import make_phone_photos
from loadtest.photos import DEFAULT_PHOTOS_DIR, load_photos
from services.core.pipeline import compiled_batch_sizes
from services.detector.settings import DEFAULT_MAX_BATCH as DETECTOR_MAX_BATCH
from services.kit.settings import DEFAULT_MAX_BATCH
from services.kit.weights import inspect_weights

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = ("ceiling", "stack", "stack-compiled", "baseline", *PEERS)
TASKS = ("classify", "detect")
PEERS_TASKS = ("classify",)  # the peers serve the classifier weights only
PEER_START_ATTEMPTS = 2
SERVICE_MAX_BATCH = {"classify": DEFAULT_MAX_BATCH, "detect": DETECTOR_MAX_BATCH}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights-dir", type=Path, default=REPO_ROOT / "weights")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS_DIR)
    parser.add_argument(
        "--photo-set",
        choices=("sample", "phone"),
        default="sample",
        help="phone: 12 MP phone-style JPEGs generated from --photos (loadtest/phone_photos.py)",
    )
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--duration", type=float, default=20.0, help="measured s per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured s per level")
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--detector-model", default="yolov3", choices=("yolov3", "yolov3-tiny"))
    parser.add_argument("--ceiling-seconds", type=float, default=4.0)
    parser.add_argument("--stack-url", default=None, help="bench a running stack instead")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-publish", action="store_true", help="leave docs/ alone")
    parser.add_argument(
        "--publish-as",
        default=None,
        help="publish to docs/benchmarks-NAME.md (default: 'phone' for the phone set, "
        "else docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = (set(args.only) - set(CONTENDERS)) | (set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown contender(s)/task(s): {sorted(unknown)}")
    return args


def cpu_busy_fraction(seconds: float = 2.0) -> float:
    """Share of the machine's CPU time spent busy over ``seconds`` (others' load, when idle)."""

    before = host_ticks()
    time.sleep(seconds)
    after = host_ticks()
    return 1.0 - (after.idle - before.idle) / max(1, after.total - before.total)


def busy_once_quiet(
    quiet: float = BUSY_WARNING / 2, deadline_s: float = 60.0, sample_s: float = 2.0
) -> float:
    """The CPU share other work takes, sampled until it is under ``quiet`` (the previous
    contender's processes may still be exiting: TorchServe's JVM takes a while) or for at
    most ``deadline_s``; the last sample is what the results record."""
    started = time.monotonic()
    busy = cpu_busy_fraction(sample_s)
    while busy >= quiet and time.monotonic() - started < deadline_s:
        busy = cpu_busy_fraction(sample_s)
    return busy


NOTABLE_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def describe_machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f"{kib / 2**20:.0f} GiB"
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    import torch  # only for its version and thread defaults

    from services.core.torch_runtime import cpu_flags

    # The flags that decide which kernels run: the same model is a different speed with them.
    flags = [flag for flag in NOTABLE_CPU_FLAGS if flag in cpu_flags()]
    return {
        "cpu": cpu,
        "cpu_flags": " ".join(flags) or "none of " + " ".join(NOTABLE_CPU_FLAGS),
        "cpus": len(os.sched_getaffinity(0)),
        "memory": memory,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "torch": f"{torch.__version__} (default intra-op threads {torch.get_num_threads()})",
    }


def weights_summary(weights_dir: Path, detector_model: str, tasks: list[str]) -> str:
    files = []
    if "classify" in tasks:
        files.append(weights_dir / "resnet18.pth")
    if "detect" in tasks:
        files.append(weights_dir / f"{detector_model}.weights")
    described = []
    for path in files:
        info = inspect_weights(path, {})
        kind = "trained" if info.source != "stand-in" else "untrained stand-in"
        described.append(f"{path.name} ({kind}, sha256 {info.sha256[:12]})")
    return ", ".join(described)


def missing_files(weights_dir: Path, detector_model: str, tasks: list[str]) -> list[str]:
    needed = ["resnet18.pth"] if "classify" in tasks else []
    if "detect" in tasks:
        needed += [f"{detector_model}.cfg", f"{detector_model}.weights", "coco.names"]
    return [name for name in needed if not (weights_dir / name).is_file()]


@dataclass(frozen=True)
class CeilingVariant:
    processes: int
    threads: int
    memory_format: str
    folded: bool
    compiled: bool
    batches: tuple[int, ...]
    with_decoding: bool = False

    @property
    def name(self) -> str:
        return (
            f"{self.processes}x{self.threads}-{self.memory_format}"
            + ("-folded" if self.folded else "")
            + ("-compiled" if self.compiled else "")
            + ("-decoding" if self.with_decoding else "")
        )


def ceiling_variants(task: str) -> list[CeilingVariant]:
    """Every exact fp32 layout of the bare model (the fastest one is the ceiling), then the
    services' own two (folded, eager or compiled) in the replicas' layout with decoding and
    preprocessing in the loop, at the batch sizes a replica forms by default."""
    sweep = (1, 2, 4, 8, 16, 32) if task == "classify" else (1, 2, 4, 8)
    # (memory format, folded norms, compiled). The services' eager default is channels_last
    # with folded norms; compiled builds on it.
    formats = (
        ("contiguous", False, False),
        ("channels_last", False, False),
        ("channels_last", True, False),
        ("channels_last", True, True),
    )
    layouts = ((1, 2), (2, 1))  # (processes, threads): both fill the 2 cores
    bare = [
        CeilingVariant(processes, threads, memory_format, folded, compiled, sweep)
        for (processes, threads), (memory_format, folded, compiled) in itertools.product(
            layouts, formats
        )
    ]
    replica_batches = tuple(compiled_batch_sizes(SERVICE_MAX_BATCH[task]))
    decoding = [
        CeilingVariant(2, 1, "channels_last", True, compiled, replica_batches, True)
        for compiled in (False, True)
    ]
    return bare + decoding


class Bench:
    def __init__(self, args: argparse.Namespace, out: Path):
        self.args = args
        self.out = out
        self.photos = load_photos(args.photos)
        self.results: dict = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": "python -m loadtest.bench " + " ".join(sys.argv[1:]),
            "machine": describe_machine(),
            "settings": {
                "concurrency": args.concurrency,
                "warmup_s": args.warmup,
                "duration_s": args.duration,
                "photos": [p.name for p in self.photos],
                "photo_set": args.photo_set,
                "publish_as": args.publish_as or "",
                "seed": args.seed,
                "detector_model": args.detector_model,
                "weights": weights_summary(args.weights_dir, args.detector_model, args.tasks),
            },
            "ceiling": {},
            "runs": [],
            "skipped": [],
        }

    def save(self) -> Path:
        path = self.out / "results.json"
        path.write_text(json.dumps(self.results, indent=2) + "\n")
        return path

    def skip(self, contender: str, tasks, reason: str) -> None:
        for task in tasks:
            print(f"bench: {contender} ({task}) cannot run here: {reason}", flush=True)
            self.results["skipped"].append({"contender": contender, "task": task, "reason": reason})

    def ceiling(self) -> None:
        for task in self.args.tasks:
            for variant in ceiling_variants(task):
                self.ceiling_variant(task, variant)

    def ceiling_variant(self, task: str, variant: CeilingVariant) -> None:
        out = self.out / f"ceiling-{task}-{variant.name}.json"
        command = [
            sys.executable,
            "-m",
            "loadtest.bench.ceiling",
            "--task",
            task,
            "--weights-dir",
            str(self.args.weights_dir),
            "--detector-model",
            self.args.detector_model,
            "--photos",
            str(self.args.photos),
            "--processes",
            str(variant.processes),
            "--threads",
            str(variant.threads),
            "--batches",
            ",".join(map(str, variant.batches)),
            "--seconds",
            str(self.args.ceiling_seconds),
            "--out",
            str(out),
            "--memory-format",
            variant.memory_format,
            *(["--fold-batchnorm"] if variant.folded else []),
            *(["--compile"] if variant.compiled else []),
            *(["--with-decoding"] if variant.with_decoding else []),
        ]
        print(f"bench: ceiling {task}, {variant.name}", flush=True)
        subprocess.run(command, cwd=REPO_ROOT, check=True)
        self.results["ceiling"].setdefault(task, []).append(json.loads(out.read_text()))
        self.save()

    def load(self, contender: str, task: str, endpoint: contenders.Endpoint, busy: float) -> None:
        cpus = self.results["machine"]["cpus"]
        levels = []
        for index, concurrency in enumerate(self.args.concurrency):
            level = self.measure(contender, task, endpoint, concurrency)
            highest = index == len(self.args.concurrency) - 1
            if reason := disturbance(level, cpus, highest):
                # One more window, for every contender alike; the first is kept beside it.
                print(
                    f"bench: {contender} c={concurrency}: {reason}; measuring that level once more",
                    flush=True,
                )
                level = {
                    **self.measure(contender, task, endpoint, concurrency),
                    "first_window": first_window_summary(level, cpus),
                }
            levels.append(level)
        self.results["runs"].append(
            {
                "contender": contender,
                "task": task,
                "settings": endpoint.settings,
                "busy_before": round(busy, 3),
                "levels": levels,
            }
        )
        self.save()

    def measure(
        self, contender: str, task: str, endpoint: contenders.Endpoint, concurrency: int
    ) -> dict:
        """One concurrency level: the client's figures and the CPU each process group used."""
        snapshots = {}
        result = run_level(
            endpoint.send,
            endpoint.check,
            self.photos,
            concurrency,
            self.args.warmup,
            self.args.duration,
            self.args.seed,
            on_window=lambda edge, taken=snapshots: taken.update(
                {edge: process_times(), f"{edge} host": host_ticks()}
            ),
        )
        split = cpu_split(snapshots["start"], snapshots["end"], os.getpid())
        model_threads = model_thread_split(snapshots["start"], snapshots["end"], os.getpid())
        answered = result.answers - result.failures
        p95 = "-" if result.p95_ms is None else f"{result.p95_ms:.0f} ms"
        print(
            f"bench: {contender:<10} {task:<8} c={concurrency:<3} "
            f"{result.images_per_s:7.2f} images/s  p95 {p95}  "
            f"failures {result.failures}/{result.answers}"
            + (f"  first: {result.first_failure}" if result.first_failure else ""),
            flush=True,
        )
        return {
            **result.as_dict(),
            "cpu_s": {group: round(used, 3) for group, used in split.items()},
            "cpu_ms_per_image": per_image_ms(split, answered),
            **(
                {"model_thread_ms_per_image": per_image_ms(model_threads, answered)}
                if model_threads
                else {}
            ),
            "steal": round(steal_fraction(snapshots["start host"], snapshots["end host"]), 3),
        }

    def stack(self, compiled: bool = False) -> None:
        """The stack as configured by default, or with ``*_COMPILE=1`` for both models."""
        name = "stack-compiled" if compiled else "stack"
        tasks = self.args.tasks
        if compiled and self.args.stack_url:
            return
        busy = busy_once_quiet()
        if self.args.stack_url:
            manager = contenders.external_stack(self.args.stack_url)
        else:
            manager = contenders.stack(
                self.args.weights_dir, self.args.detector_model, self.out / name, compiled=compiled
            )
        print(f"bench: starting the {name}", flush=True)
        with manager as endpoints:
            for task in tasks:
                self.load(name, task, endpoints[task], busy)

    def baseline(self) -> None:
        for task in self.args.tasks:
            busy = busy_once_quiet()
            with contenders.baseline(
                task, self.args.weights_dir, self.args.detector_model, self.out
            ) as endpoint:
                self.load("baseline", task, endpoint, busy)

    def peer(self, name: str) -> None:
        tasks = [t for t in self.args.tasks if t in PEERS_TASKS]
        if not tasks:
            return
        peer = PEERS[name]
        try:
            python = ensure_peer_venv(
                peer.venv_path, peer.requirements_path, log_path=self.out / f"{peer.venv}.log"
            )
        except (PeerUnavailable, OSError) as error:
            self.skip(name, tasks, str(error))
            return
        starter = peer.start()
        # A failed start gets one more try: PyTriton's second model instance sometimes asks the
        # first for its config before that one listens (ConnectionRefusedError in the stub).
        for attempt in range(1, PEER_START_ATTEMPTS + 1):
            busy = busy_once_quiet()
            loading = False
            try:
                with starter(python, self.args.weights_dir, self.out) as endpoint:
                    loading = True
                    for task in tasks:
                        self.load(name, task, endpoint, busy)
                return
            except (PeerUnavailable, RuntimeError, TimeoutError) as error:
                reason = str(error).strip().splitlines()[0][:500]
                if loading or attempt == PEER_START_ATTEMPTS:
                    self.skip(name, tasks, reason)
                    return
                print(f"bench: {name} did not start ({reason}); trying once more", flush=True)
                self.results.setdefault("retried_starts", []).append(
                    {"contender": name, "reason": reason}
                )


def level_busy(level: dict, cpus: int) -> float:
    return busy_fraction(level["cpu_s"], level["window_s"], cpus)


def disturbance(level: dict, cpus: int, highest: bool) -> str | None:
    """Why a window does not measure the contender on this machine, or None. A closed loop at
    the highest concurrency keeps a server that can use every core busy: an idle share means
    the host held it back, or the server cannot (one GIL). At any level, steal means the
    hypervisor ran other guests on these cores."""
    if not level.get("cpu_s"):
        return None
    if (level.get("steal") or 0.0) >= STEAL_DISTURBED:
        return f"{level['steal']:.0%} of the CPU stolen by the hypervisor"
    if highest and level_busy(level, cpus) < SATURATED_BUSY:
        return f"CPU {level_busy(level, cpus):.0%} busy, under {SATURATED_BUSY:.0%}"
    return None


def first_window_summary(level: dict, cpus: int) -> dict:
    """What the replaced window measured, kept beside the second in results.json."""
    return {
        "busy": round(level_busy(level, cpus), 3),
        **{key: level[key] for key in ("images_per_s", "p95_ms", "answers", "failures")},
        "steal": level.get("steal"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_files(args.weights_dir, args.detector_model, args.tasks)
    if missing:
        print(
            f"bench: missing in {args.weights_dir}: {', '.join(missing)} (run `make weights`)",
            file=sys.stderr,
        )
        return 2
    out = (
        args.results or REPO_ROOT / "results" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    ).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.photo_set == "phone":
        # Generated for this run from the sample photos, deterministic, kept with the results.
        args.photos = make_phone_photos(out / "phone-photos", args.photos)[0].parent
        # docs/benchmarks.md holds the sample-photo run; a phone run has its own page.
        if args.publish_as is None:
            args.publish_as = "phone"
    started = time.monotonic()
    busy = cpu_busy_fraction(3.0)
    bench = Bench(args, out)
    bench.results["machine"]["busy_before"] = (
        f"{busy:.0%} of the CPU busy with other work when the run started"
    )
    bench.results["settings"]["busy_before_fraction"] = round(busy, 3)
    if busy > 0.2:
        print(
            f"bench: WARNING: {busy:.0%} of the CPU is busy with other work; "
            "the figures will be low and noisy",
            flush=True,
        )
    print(f"bench: results in {out}", flush=True)
    steps = {
        "ceiling": bench.ceiling,
        "stack": bench.stack,
        "stack-compiled": lambda: bench.stack(compiled=True),
        "baseline": bench.baseline,
        **{name: (lambda name=name: bench.peer(name)) for name in PEERS},
    }
    for name in CONTENDERS:
        if name not in args.only:
            continue
        try:
            steps[name]()
        except Exception as error:  # one contender failing must not lose the others' figures
            traceback.print_exc()
            measured = {run["task"] for run in bench.results["runs"] if run["contender"] == name}
            reason = f"{type(error).__name__}: " + (str(error).strip().splitlines() or [""])[0]
            bench.skip(name, [t for t in args.tasks if t not in measured], reason[:500])
    bench.results["duration_s"] = time.monotonic() - started
    results_path = bench.save()
    report = write_outputs(results_path, publish=not args.no_publish)
    print(report.read_text())
    where = str(out) if args.no_publish else f"{document_path(bench.results)} and docs/img/"
    print(f"bench: done in {bench.results['duration_s'] / 60:.1f} min; written to {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
