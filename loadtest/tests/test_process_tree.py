"""The peers' cleanup helpers against real processes: an orphan that leaves the server's
process group (as PyTriton's backend stubs do) is still found and killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

from loadtest.bench.process_tree import kill_leftovers, process_tree, stat_fields


def wait_until_gone(pid: int, deadline_s: float = 10) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            state = stat_fields(pid)[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


def wait_until_session_leader(pid: int, deadline_s: float = 10) -> None:
    """``$!`` is known before the child has called setsid(): a group stop sent in between
    would still reach it, so wait until it leads a session of its own."""
    deadline = time.monotonic() + deadline_s
    while stat_fields(pid)[3] != str(pid):  # field 6 of stat, the session id
        assert time.monotonic() < deadline, f"{pid} never left its parent's session"
        time.sleep(0.01)


def test_a_child_in_its_own_session_survives_the_group_stop_and_is_killed_after():
    # The parent starts a child in a new session (out of the parent's process group), prints
    # its pid and waits.
    server = subprocess.Popen(
        ["sh", "-c", "setsid sleep 60 & echo $!; wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = int(server.stdout.readline())
    try:
        wait_until_session_leader(child)
        tree = process_tree(server.pid)
        assert child in tree
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        assert not wait_until_gone(child, 0.3)  # the group stop did not reach it
        assert kill_leftovers(tree) == [child]
        assert wait_until_gone(child)
        assert kill_leftovers(tree) == []  # nothing left to kill, and no stranger's pid
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
