"""The SLO gate's verdicts."""

from __future__ import annotations

import pytest

from loadtest.slo import SloLimits, evaluate, parse_endpoint_limits

LIMITS = SloLimits(max_failure_ratio=0.01, max_p95_ms=500)


def test_within_limits_passes():
    verdict = evaluate(1000, 10, 499.0, LIMITS)
    assert verdict.passed and verdict.violations == []
    assert "PASSED" in verdict.summary()


def test_too_many_failures_fail():
    verdict = evaluate(1000, 11, 100.0, LIMITS)
    assert not verdict.passed
    assert "failure ratio 0.0110 exceeds 0.01" in verdict.violations[0]


def test_a_slow_p95_fails():
    verdict = evaluate(100, 0, 501.0, LIMITS)
    assert not verdict.passed and "p95 latency 501 ms exceeds 500 ms" in verdict.violations[0]


def test_no_requests_at_all_fails():
    assert evaluate(0, 0, None, LIMITS).violations == ["no request completed"]


def test_exceptions_in_the_load_test_fail():
    assert not evaluate(100, 0, 10.0, LIMITS, task_errors=2).passed


def test_zero_tolerance():
    assert not evaluate(100, 1, 10.0, SloLimits(0.0, 500)).passed
    assert evaluate(100, 0, 10.0, SloLimits(0.0, 500)).passed


@pytest.mark.parametrize(("ratio", "p95"), [(-0.1, 100), (1.5, 100), (0.1, 0)])
def test_limits_are_validated(ratio, p95):
    with pytest.raises(ValueError):
        SloLimits(ratio, p95)


def test_per_endpoint_p95_limits():
    limits = SloLimits(0.01, 5000, parse_endpoint_limits("POST /v1/detect=900, GET /=50"))
    assert limits.endpoint_max_p95_ms == {"POST /v1/detect": 900.0, "GET /": 50.0}
    verdict = evaluate(100, 0, 400.0, limits, endpoint_p95_ms={"POST /v1/detect": 950.0})
    assert verdict.violations == [
        "POST /v1/detect: p95 latency 950 ms exceeds 900 ms",
        "GET /: no request, so its p95 limit cannot be checked",
    ]
    assert evaluate(
        100, 0, 400.0, limits, endpoint_p95_ms={"POST /v1/detect": 900.0, "GET /": 12.0}
    ).passed


@pytest.mark.parametrize("text", ["POST /v1/detect", "=5", "GET /=fast"])
def test_bad_endpoint_limits_are_refused(text):
    with pytest.raises(ValueError):
        parse_endpoint_limits(text)
