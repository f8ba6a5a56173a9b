"""Wait until every replica is ready, then print where the stack is (a `make run` step).

    python -m scripts.wait_ready PUBLIC_URL REPLICA_URL...

PUBLIC_URL ``-``: this host runs no nginx (STACK_ROLE=models); only the replicas are named.

Stays running afterwards, until supervisord stops it with the rest of the stack.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.error
import urllib.request

DEADLINE_S = 600


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def untrained_models(public: str) -> list[str]:
    try:
        with urllib.request.urlopen(public + "/v1/models", timeout=10) as response:
            models = json.load(response)["models"]
    except (OSError, ValueError, KeyError):
        return []
    return [m.get("name", "?") for m in models if m.get("weights", {}).get("trained") is False]


def main(argv: list[str]) -> int:
    public, replicas = argv[0], argv[1:]
    deadline = time.monotonic() + DEADLINE_S
    waiting = list(replicas)
    while waiting and time.monotonic() < deadline:
        waiting = [url for url in waiting if status(url + "/readyz") != 200]
        time.sleep(0.5)
    if waiting:
        print(f"not ready after {DEADLINE_S}s: {' '.join(waiting)}", flush=True)
        return 1
    if public == "-":
        print(f"\n  The model replicas are ready: {' '.join(replicas)}\n", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        return 0
    print(f"\n  The stack is ready: open {public}/  (API docs: {public}/docs)\n", flush=True)
    untrained = untrained_models(public)
    if untrained:
        print(
            f"  WARNING: {', '.join(untrained)} run on UNTRAINED STAND-IN weights: "
            "results are meaningless.\n",
            flush=True,
        )
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    sys.exit(main(sys.argv[1:]))
