"""Bounded closed-loop load for tests: N clients posting a photo until told to stop.

Every loop stops by itself at its deadline or request cap (load tests here must never run
unbounded). Outcomes are kept per request, so a test can say exactly which ones failed and
when, relative to an event such as a killed host.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field

import requests
import urllib3


def closed_without_answer(error: requests.ConnectionError) -> bool:
    """The server reset or closed an established connection before any answer (a refused
    or timed-out connect is not that)."""
    reason = error.args[0] if error.args else None
    return isinstance(reason, urllib3.exceptions.ProtocolError) and any(
        isinstance(arg, (ConnectionResetError, http.client.RemoteDisconnected))
        for arg in reason.args
    )


@dataclass
class Outcome:
    started: float  # time.monotonic()
    seconds: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    served_by: str
    error: str = ""
    # The first try died on a connection reset before any answer, and was sent again.
    retried_after_reset: bool = False


@dataclass
class ClosedLoopLoad:
    """``clients`` threads posting ``photo`` to ``url`` back to back (``None``: a GET).

    Use as a context manager: the clients start on entry and stop on exit (also when the
    body fails); ``max_seconds`` and ``max_requests`` bound the run in any case.
    """

    url: str
    photo: bytes | None
    clients: int = 8
    max_seconds: float = 120
    max_requests: int = 5000
    timeout_s: float = 120
    # Send a request once more when its connection was reset before any answer, as browsers
    # do on a reused keep-alive connection: nginx closes idle client connections when it
    # reloads (a changed replica set), and a request sent at that instant meets the reset.
    retry_reset_once: bool = False
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _client(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if len(self.outcomes) + self._in_flight >= self.max_requests:
                        return
                    self._in_flight += 1
                outcome = self._request(session)
                with self._lock:
                    self._in_flight -= 1
                    self.outcomes.append(outcome)

    def _request(self, session: requests.Session) -> Outcome:
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                if self.photo is None:
                    response = session.get(self.url, timeout=self.timeout_s)
                else:
                    response = session.post(
                        self.url,
                        files={"image": ("photo.jpg", self.photo, "image/jpeg")},
                        timeout=self.timeout_s,
                    )
            except requests.ConnectionError as error:
                if attempt == 1 and self.retry_reset_once and closed_without_answer(error):
                    continue
                return Outcome(started, time.monotonic() - started, 0, "", str(error), attempt > 1)
            except requests.RequestException as error:
                return Outcome(started, time.monotonic() - started, 0, "", str(error), attempt > 1)
            return Outcome(
                started,
                time.monotonic() - started,
                response.status_code,
                response.headers.get("X-Served-By", ""),
                "" if response.ok else response.text[:200],
                attempt > 1,
            )
        raise AssertionError("not reached")

    def resets_retried(self) -> int:
        with self._lock:
            return sum(1 for o in self.outcomes if o.retried_after_reset)

    def __enter__(self) -> ClosedLoopLoad:
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)

    def wait_for_answers(self, count: int, deadline_s: float = 120) -> None:
        """Block until ``count`` requests have been answered (any status)."""
        deadline = time.monotonic() + deadline_s
        while len(self.outcomes) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.outcomes)} of {count} answers in {deadline_s}s")
            time.sleep(0.05)

    def wait_for_answers_started_after(
        self, moment: float, count: int, deadline_s: float = 120
    ) -> None:
        """Block until ``count`` requests sent after ``moment`` (monotonic) have been answered."""
        deadline = time.monotonic() + deadline_s
        while True:
            with self._lock:
                started_after = sum(1 for o in self.outcomes if o.started > moment)
            if started_after >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {started_after} of {count} answers to requests sent after the event"
                )
            time.sleep(0.05)

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.status != 200]

    def served_by(self) -> set[str]:
        with self._lock:
            return {o.served_by for o in self.outcomes if o.served_by}
