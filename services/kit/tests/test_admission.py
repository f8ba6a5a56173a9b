"""Admission control: the derived limit, and a full worker refusing at once."""

from __future__ import annotations

import pytest

from services.kit.admission import Admission, auto_queue_limit, effective_queue_limit
from services.kit.errors import ApiError


@pytest.mark.parametrize(
    ("budget_ms", "image_ms", "threads", "limit"),
    [
        (500, 80, 16, 6),  # ResNet18 on one CPU thread: six images fit the budget
        (500, 2000, 16, 2),  # slower than the budget: one in the model, one decoding
        (500, 1, 16, 14),  # a GPU: capped by the threads, two kept to refuse
        (500, 0, 4, 2),
        (500, 2000, 3, 1),  # three threads: one admitted, two to refuse
    ],
)
def test_the_limit_is_the_images_that_fit_the_budget(budget_ms, image_ms, threads, limit):
    assert auto_queue_limit(budget_ms, image_ms, threads) == limit


def test_a_configured_limit_keeps_threads_free_to_refuse():
    assert effective_queue_limit(4, 16) == 4
    assert effective_queue_limit(64, 16) == 14
    assert effective_queue_limit(8, 2) == 1


def test_a_full_worker_refuses_with_503_and_admits_again_once_a_place_is_free():
    admission = Admission("test-admission")
    admission.set_limit(2)
    with admission.admit(), admission.admit():
        assert admission.admitted == 2
        with pytest.raises(ApiError) as refused, admission.admit():
            pass
        assert (refused.value.status, refused.value.code) == (503, "overloaded")
        assert refused.value.headers == {"Retry-After": "1"}
    assert admission.admitted == 0
    with admission.admit():
        assert admission.admitted == 1


def test_a_failing_request_gives_its_place_back():
    admission = Admission("test-admission-errors")
    admission.set_limit(1)
    with pytest.raises(RuntimeError), admission.admit():
        raise RuntimeError("decode failed")
    assert admission.admitted == 0
