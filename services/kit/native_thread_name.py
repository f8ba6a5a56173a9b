"""The name a thread carries for the operating system (``ps -L``, ``top -H``, py-spy, /proc).

Python 3.11 names its threads only for itself; the kernel sees every thread of a worker as
"python". The model's thread is named so that a replica's CPU can be split between the
model and the request threads from outside (the bench does, loadtest/bench/cpu_split.py).
setproctitle's ``setthreadtitle`` does the same, but installing it also makes gunicorn retitle
its processes, and the bench and tests tell the services' processes apart by command line.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# The model's inference thread in every model worker (services/core/batching.py).
MODEL_THREAD_NAME = "inference"
_PR_SET_NAME = 15  # prctl(2)
_MAX_NAME_BYTES = 15  # the kernel keeps 16 bytes with the terminating NUL


def set_native_thread_name(name: str) -> bool:
    """Name the calling thread for the OS (Linux; truncated to 15 bytes). False where the
    platform has no prctl: the name is a convenience, never a reason to fail."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        encoded = name.encode()[:_MAX_NAME_BYTES]
        return libc.prctl(_PR_SET_NAME, ctypes.c_char_p(encoded), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
