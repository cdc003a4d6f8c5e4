"""Per-key budgets (``api.limits``): moving windows, every window tested before any is spent,
Retry-After from the oldest spend in the window, and no thread per request."""

from __future__ import annotations

import threading

import pytest

from idr_pipeline.api.limits import MovingWindow, RateLimiter


def test_a_moving_window_frees_a_spend_once_its_oldest_leaves_the_window() -> None:
    window = MovingWindow(amount=2, seconds=10)
    window.spend(100.0)
    assert window.wait(101.0) == 0
    window.spend(104.0)
    assert window.wait(105.0) == pytest.approx(5.0)  # the spend at 100 leaves at 110
    assert window.wait(110.0) == 0
    window.spend(110.0)
    assert window.wait(113.0) == pytest.approx(1.0)  # the spend at 104 leaves at 114


def test_a_refused_request_spends_from_no_window() -> None:
    limiter = RateLimiter({"default": "2/minute;100/hour"})
    assert [limiter.spend("k") for _ in range(2)] == [None, None]
    for _ in range(5):
        retry_after = limiter.spend("k")
        assert retry_after is not None and 1 <= retry_after <= 60
    # Only the two allowed requests were spent from the hourly window.
    hourly = limiter._windows[("k", "default")][1]
    assert len(hourly._spent) == 2


def test_budgets_are_kept_per_key_and_per_budget() -> None:
    limiter = RateLimiter({"default": "1/minute", "resolve": "1/minute"})
    assert limiter.spend("a") is None
    assert limiter.spend("a") is not None
    assert limiter.spend("b") is None
    assert limiter.spend("a", "resolve") is None
    with pytest.raises(KeyError):
        limiter.spend("a", "activations")


def test_spending_starts_no_thread() -> None:
    """The request path must not start threads: each would take the GIL from the event loop."""
    limiter = RateLimiter({"default": "100000/minute"})
    before = threading.active_count()
    started = []
    original = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    threading.Thread.start = counting_start  # type: ignore[method-assign]
    try:
        for _ in range(2000):
            assert limiter.spend("k") is None
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]
    assert started == []
    assert threading.active_count() == before
