"""Where the CPU went during a measured window: CPU seconds of every process, grouped.

Two snapshots of ``/proc/<pid>/stat`` (user + system time) around the window; the
difference, per process, is put in one of these groups: the load client (the bench's own
process), the contender (every process started under the bench: for this stack split into
nginx and each model's replicas by their command line), and other work on the machine. A
process that starts and ends inside the window is missed; the contenders' processes all
live for the whole level. In the stack's model replicas the model's own thread (named for the
OS, services/kit/native_thread_name.py) is also counted on its own: what the model took, apart
from the request threads (HTTP, multipart, decoding, preprocessing, JSON).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.kit.native_thread_name import MODEL_THREAD_NAME

CLIENT = "load client"
OTHER = "other work"
SERVER = "server"
# At the highest concurrency a closed loop keeps every core busy; below this a server either
# cannot use them all or was disturbed (seen on a shared host: 89 % against the others' 98 %).
SATURATED_BUSY = 0.95
# A window in which the hypervisor took this much of the machine measured a slower machine.
STEAL_DISTURBED = 0.05
# Command-line fragment -> group, for the stack's own processes; the first match wins.
STACK_GROUPS = (
    ("nginx", "nginx"),
    ("services/classifier", "classifier replicas"),
    ("services/detector", "detector replicas"),
    ("services/web", "web"),
)
# The groups whose processes run a model thread.
REPLICA_GROUPS = ("classifier replicas", "detector replicas")


@dataclass(frozen=True)
class ProcessTimes:
    pid: int
    parent: int
    command: str
    cpu_s: float  # user + system since the process started
    model_thread_cpu_s: float = 0.0  # of which its model thread's (replicas only)


@dataclass(frozen=True)
class HostTicks:
    """The machine's CPU time since boot, in clock ticks (the first line of /proc/stat)."""

    total: int
    idle: int  # idle + iowait
    steal: int  # ready to run, but the hypervisor ran another guest


def host_ticks(stat: Path = Path("/proc/stat")) -> HostTicks:
    # user nice system idle iowait irq softirq steal (guest time is already in user/nice)
    values = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:9]]
    values += [0] * (8 - len(values))  # kernels without the steal column
    return HostTicks(sum(values), values[3] + values[4], values[7])


def steal_fraction(before: HostTicks, after: HostTicks) -> float:
    """Share of the machine's CPU time between two readings that the hypervisor took: lost
    throughput that no process's CPU time shows."""
    return (after.steal - before.steal) / max(1, after.total - before.total)


def _stat_fields(stat: str) -> list[str]:
    # The command name in parentheses may hold spaces: fields start after the last ")".
    return stat.rsplit(")", 1)[1].split()


def _cpu_ticks(fields: list[str]) -> int:
    """user + system time from a /proc stat line's fields (after the command name)."""
    return int(fields[11]) + int(fields[12])


def model_thread_ticks(process_dir: Path) -> int:
    """CPU ticks of the process's threads named MODEL_THREAD_NAME (0 when it has none)."""
    ticks = 0
    try:
        tasks = list((process_dir / "task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            if (task / "comm").read_text().strip() == MODEL_THREAD_NAME:
                ticks += _cpu_ticks(_stat_fields((task / "stat").read_text()))
        except OSError:
            continue
    return ticks


def process_times(proc: Path = Path("/proc")) -> dict[int, ProcessTimes]:
    """Every process's CPU time now (processes that vanish while read are skipped)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = _stat_fields(stat)
        pid = int(entry.name)
        model = model_thread_ticks(entry) if stack_group(command) in REPLICA_GROUPS else 0
        table[pid] = ProcessTimes(
            pid, int(fields[1]), command.strip(), _cpu_ticks(fields) / ticks, model / ticks
        )
    return table


def descends_from(pid: int, ancestor: int, table: dict[int, ProcessTimes]) -> bool:
    seen = set()
    while pid in table and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = table[pid].parent
    return pid == ancestor


def group_of(process: ProcessTimes, client_pid: int, table: dict[int, ProcessTimes]) -> str:
    if process.pid == client_pid:
        return CLIENT
    if not descends_from(process.pid, client_pid, table):
        return OTHER
    return stack_group(process.command) or SERVER


def stack_group(command: str) -> str | None:
    """The stack's group a command line belongs to, if any."""
    return next((group for fragment, group in STACK_GROUPS if fragment in command), None)


def cpu_split(
    before: dict[int, ProcessTimes], after: dict[int, ProcessTimes], client_pid: int
) -> dict[str, float]:
    """CPU seconds per group between two snapshots, largest first."""
    seconds = _seconds_per_group(before, after, client_pid, lambda process: process.cpu_s)
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def model_thread_split(
    before: dict[int, ProcessTimes], after: dict[int, ProcessTimes], client_pid: int
) -> dict[str, float]:
    """CPU seconds of the model threads between two snapshots, per replica group (empty for
    a contender without them)."""
    return _seconds_per_group(before, after, client_pid, lambda process: process.model_thread_cpu_s)


def _seconds_per_group(
    before: dict[int, ProcessTimes],
    after: dict[int, ProcessTimes],
    client_pid: int,
    seconds_of: Callable[[ProcessTimes], float],
) -> dict[str, float]:
    """The growth of ``seconds_of(process)`` between two snapshots, summed per group; a
    process started during the window counts whole."""
    seconds: dict[str, float] = {}
    for pid, process in after.items():
        used = seconds_of(process) - (seconds_of(before[pid]) if pid in before else 0.0)
        if used > 0:
            group = group_of(process, client_pid, after)
            seconds[group] = seconds.get(group, 0.0) + used
    return seconds


def per_image_ms(seconds: dict[str, float], images: int) -> dict[str, float]:
    """CPU milliseconds per answered image, per group (empty when nothing was answered)."""
    if images <= 0:
        return {}
    return {group: round(1000 * used / images, 2) for group, used in seconds.items()}


def busy_fraction(seconds: dict[str, float], window_s: float, cpus: int) -> float:
    """Share of the machine's CPU time the window's processes used (every group counted)."""
    return sum(seconds.values()) / (window_s * max(1, cpus))
