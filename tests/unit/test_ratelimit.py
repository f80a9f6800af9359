from __future__ import annotations

import pytest

from chat.ratelimit import ConnectionLimiter, KeyedLimiter, Rate, TokenBucket


class FakeClock:
    """A clock the test advances by hand (time itself, not a mock of our code)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(per_second=2, burst=3), clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take()
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.take() == 0.0
    clock.now += 100
    assert [bucket.take() for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # capped at the burst


def test_keyed_limiter_is_per_key_and_bounded() -> None:
    clock = FakeClock()
    limiter = KeyedLimiter(Rate(per_second=1, burst=1), capacity=3, clock=clock)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0
    for key in "cdef":
        limiter.take(key)
    assert len(limiter) == 3


def test_connection_limiter() -> None:
    limiter = ConnectionLimiter(total=3, per_address=2)
    assert limiter.try_acquire("1.1.1.1") is None
    assert limiter.try_acquire("1.1.1.1") is None
    assert limiter.try_acquire("1.1.1.1") == "per_address"
    assert limiter.try_acquire("2.2.2.2") is None
    assert limiter.try_acquire("3.3.3.3") == "total"
    limiter.release("1.1.1.1")
    assert limiter.try_acquire("3.3.3.3") is None
    for address in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        limiter.release(address)
    assert (limiter.total, limiter.addresses) == (0, 0)
