"""The per-request log of a load test: one CSV row per request, written by the locustfile.

Locust's own CSVs hold percentiles rounded into buckets and over sliding windows; this log
keeps every response time exactly, for the plots and the summary (loadtest/report.py).
"""

from __future__ import annotations

import csv
from typing import TextIO

FIELDS = ["start_time", "name", "response_time_ms", "response_length", "ok", "error"]


class RequestLogWriter:
    """Appends rows to an open text file; ``start_time`` is Unix time in seconds."""

    def __init__(self, handle: TextIO):
        self._handle = handle
        self._writer = csv.writer(handle)
        self._writer.writerow(FIELDS)

    def write(
        self, start_time: float, name: str, response_time_ms: float, length: int, error: str
    ) -> None:
        self._writer.writerow(
            [f"{start_time:.4f}", name, f"{response_time_ms:.2f}", length, int(not error), error]
        )

    def close(self) -> None:
        self._handle.close()
