"""The SLO gate of a load test: failure ratio and p95 latency within limits, or the run fails."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

DEFAULT_MAX_FAILURE_RATIO = 0.01
DEFAULT_MAX_P95_MS = 5000.0


@dataclass(frozen=True)
class SloLimits:
    """Limits on all requests together, plus optional p95 limits per endpoint (request name)."""

    max_failure_ratio: float = DEFAULT_MAX_FAILURE_RATIO
    max_p95_ms: float = DEFAULT_MAX_P95_MS
    endpoint_max_p95_ms: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_failure_ratio <= 1.0:
            raise ValueError(f"max failure ratio {self.max_failure_ratio} is not in [0, 1]")
        for name, limit in {"all requests": self.max_p95_ms, **self.endpoint_max_p95_ms}.items():
            if limit <= 0:
                raise ValueError(f"max p95 of {name}: {limit} ms is not positive")


def parse_endpoint_limits(text: str) -> dict[str, float]:
    """``"POST /v1/detect=5000,POST /v1/classify=800"`` -> {name: p95 limit in ms}."""
    limits = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition("=")
        try:
            limits[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"endpoint p95 limit {item!r} is not NAME=MILLISECONDS")
    return limits


@dataclass
class SloVerdict:
    passed: bool
    requests: int
    failures: int
    failure_ratio: float
    p95_ms: float | None
    limits: SloLimits
    violations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        p95 = "n/a" if self.p95_ms is None else f"{self.p95_ms:.0f} ms"
        head = (
            f"SLO {'PASSED' if self.passed else 'FAILED'}: {self.requests} requests, "
            f"{self.failures} failures (ratio {self.failure_ratio:.4f}, limit "
            f"{self.limits.max_failure_ratio:g}), p95 {p95} (limit {self.limits.max_p95_ms:g} ms)"
        )
        return "\n".join([head, *(f"  - {v}" for v in self.violations)])


def evaluate(
    requests: int,
    failures: int,
    p95_ms: float | None,
    limits: SloLimits,
    task_errors: int = 0,
    endpoint_p95_ms: Mapping[str, float | None] | None = None,
) -> SloVerdict:
    """Judge a run. ``task_errors``: exceptions raised by the load test's own code, which
    make its numbers untrustworthy and so fail the gate too. ``endpoint_p95_ms``: the p95
    of each request name, checked against ``limits.endpoint_max_p95_ms``."""
    ratio = failures / requests if requests else 0.0
    violations = []
    if requests == 0:
        violations.append("no request completed")
    if ratio > limits.max_failure_ratio:
        violations.append(
            f"failure ratio {ratio:.4f} exceeds {limits.max_failure_ratio:g} "
            f"({failures} of {requests})"
        )
    if p95_ms is not None and p95_ms > limits.max_p95_ms:
        violations.append(f"p95 latency {p95_ms:.0f} ms exceeds {limits.max_p95_ms:g} ms")
    endpoint_p95_ms = endpoint_p95_ms or {}
    for name, limit in limits.endpoint_max_p95_ms.items():
        measured = endpoint_p95_ms.get(name)
        if measured is None:
            violations.append(f"{name}: no request, so its p95 limit cannot be checked")
        elif measured > limit:
            violations.append(f"{name}: p95 latency {measured:.0f} ms exceeds {limit:g} ms")
    if task_errors:
        violations.append(f"{task_errors} exception(s) in the load test's own code")
    return SloVerdict(not violations, requests, failures, ratio, p95_ms, limits, violations)
