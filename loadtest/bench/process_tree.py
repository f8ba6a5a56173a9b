"""A server's live descendants, read from /proc, for the contenders that clean up after a
peer's stop (BentoML's orphaned workers, PyTriton's shared-memory tensor store)."""

from __future__ import annotations

import contextlib
from pathlib import Path


def process_tree(root: int) -> dict[int, str]:
    """Every live descendant of ``root``: pid -> its start time (to tell a reused pid)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            # Fields after the ")" that closes the command name: state, ppid, ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
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
