"""The bench's CPU split: real /proc snapshots around a child that burns CPU, and the grouping
rules on a synthetic process table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtest.bench.cpu_split import (
    CLIENT,
    OTHER,
    SERVER,
    ProcessTimes,
    cpu_split,
    host_ticks,
    model_thread_split,
    per_image_ms,
    process_times,
    steal_fraction,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Burns about 0.3 s of CPU, then exits: bounded, whatever the machine.
BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_a_child_burning_cpu_is_the_contender_and_this_process_the_client():
    before = process_times()
    # The last argument only makes the command line look like a stack process.
    child = subprocess.Popen(
        [sys.executable, "-c", BURN + "input()", "nginx"], stdin=subprocess.PIPE
    )
    try:
        end = sum(range(2_000_000))  # some CPU of our own, too
        assert end > 0
        deadline = time.monotonic() + 30
        while process_times().get(child.pid, ProcessTimes(0, 0, "", 0.0)).cpu_s < 0.25:
            assert child.poll() is None and time.monotonic() < deadline
        after = process_times()
    finally:
        child.communicate(b"\n", timeout=30)
    split = cpu_split(before, after, os.getpid())
    assert split["nginx"] >= 0.25
    assert split[CLIENT] > 0
    assert SERVER not in split or split[SERVER] < split["nginx"]


# A replica look-alike: a thread named as the model's burns about 0.3 s, the main thread a
# third of that; bounded, then it waits for a line on stdin.
MODEL_THREAD_BURN = (
    "import threading, time\n"
    "from services.kit.native_thread_name import MODEL_THREAD_NAME, set_native_thread_name\n"
    "burnt = threading.Event()\n"
    "def burn(seconds):\n"
    "    end = time.thread_time() + seconds\n"
    "    while time.thread_time() < end: pass\n"
    "def model():\n"
    "    set_native_thread_name(MODEL_THREAD_NAME)\n"
    "    burn(0.3); burnt.set()\n"
    "    threading.Event().wait()  # alive while read: an ended thread leaves /proc\n"
    "threading.Thread(target=model, daemon=True).start()\n"
    "burn(0.1); burnt.wait()\n"
    "print('done', flush=True); input()\n"
)


@pytest.mark.parametrize(
    "command_tail, counted_apart",
    [("services/classifier", True), ("nginx", False)],
    ids=["a replica", "not a replica"],
)
def test_a_replicas_model_thread_is_counted_apart(command_tail, counted_apart):
    before = process_times()
    # The last argument makes the command line look like a replica's, or nginx's.
    child = subprocess.Popen(
        [sys.executable, "-c", MODEL_THREAD_BURN, command_tail],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "done"  # its threads have burnt their CPU
        after = process_times()
    finally:
        child.communicate("\n", timeout=30)
    process = after[child.pid]
    model = model_thread_split(before, after, os.getpid())
    if not counted_apart:
        # Only replicas are looked into: the same named thread elsewhere is the process's CPU.
        assert process.model_thread_cpu_s == 0.0 and model == {}
        assert process.cpu_s >= 0.35
        return
    assert 0.25 <= process.model_thread_cpu_s < process.cpu_s
    split = cpu_split(before, after, os.getpid())
    assert model["classifier replicas"] == process.model_thread_cpu_s
    assert split["classifier replicas"] - model["classifier replicas"] >= 0.05  # the rest


def test_grouping_follows_the_process_tree_and_the_command_line():
    client = 100
    table = {
        1: ProcessTimes(1, 0, "/sbin/init", 5.0),
        client: ProcessTimes(client, 1, "python -m loadtest.bench", 3.0),
        101: ProcessTimes(101, client, "python -m supervisor.supervisord", 0.1),
        102: ProcessTimes(
            102, 101, "python -m gunicorn -c services/classifier/gunicorn.conf.py", 9
        ),
        103: ProcessTimes(103, 101, "nginx: worker process", 1.0),
        104: ProcessTimes(104, client, "java -cp torchserve", 4.0),
        105: ProcessTimes(105, 1, "sshd", 2.0),
    }
    before = {pid: ProcessTimes(p.pid, p.parent, p.command, 0.0) for pid, p in table.items()}
    del before[104]  # started during the window: all its time counts
    split = cpu_split(before, table, client)
    assert (
        split
        == {
            OTHER: 7.0,
            "classifier replicas": 9.0,
            SERVER: 4.1,
            CLIENT: 3.0,
            "nginx": 1.0,
        }
        and next(iter(split)) == "classifier replicas"
    )
    assert per_image_ms({"nginx": 1.0}, 500) == {"nginx": 2.0}
    assert per_image_ms({"nginx": 1.0}, 0) == {}


def test_steal_is_the_hypervisors_share_of_the_machines_time(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n")
    before = host_ticks(stat)
    stat.write_text("cpu  250 0 100 1400 50 0 0 200 30 0\n")
    after = host_ticks(stat)
    assert (before.total, before.idle, before.steal) == (1000, 850, 0)
    # 1000 ticks passed (guest time is inside user): 200 stolen, 600 idle
    assert steal_fraction(before, after) == 0.2
    assert after.idle - before.idle == 600


def test_a_kernel_without_a_steal_column_reads_as_no_steal(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 50\n")
    assert host_ticks(stat).steal == 0
