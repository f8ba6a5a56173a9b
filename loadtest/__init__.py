"""Load tests (locust) and the benchmark of the serving stack against its ceiling and peers.

- ``loadtest/locustfile.py``: user classes for the detector API, the classifier API and the
  browser flow; run it with ``make loadtest`` (``python -m loadtest.run``).
- ``loadtest/bench/``: ``make bench`` (``python -m loadtest.bench``).
See docs/loadtest.md and docs/benchmarks.md.
"""
