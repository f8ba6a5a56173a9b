"""A server's live descendants, read from /proc, for the contenders that clean up after a
peer's stop (BentoML's orphaned workers; PyTriton's backend stubs, which outlive the
server's process group, and its shared-memory tensor store)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the ")" that closes the command name: state, ppid, ...
    (field 19 is the start time). OSError when the process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> dict[int, str]:
    """Every live descendant of ``root``: pid -> its start time (to tell a reused pid)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = stat_fields(entry.name)
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)
            started[pid] = fields[19]
    tree: dict[int, str] = {}
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            tree[child] = started[child]
            pending.append(child)
    return tree


def kill_leftovers(tree: dict[int, str]) -> list[int]:
    """SIGKILL what is still running of ``tree``; the pids that had to be killed."""
    killed = []
    for pid, start in tree.items():
        with contextlib.suppress(OSError, IndexError):
            fields = stat_fields(pid)
            if fields[19] != start:
                continue  # the pid now belongs to another process
            if fields[0] == "Z":
                continue  # already dead, waiting to be reaped
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
