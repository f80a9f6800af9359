"""Token buckets: per connection for socket messages, per client address for HTTP posts, and
counters for concurrent connections. Everything is bounded: the per-address table forgets the
least recently seen addresses beyond its capacity."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` tokens are added continuously, up to `burst` tokens held at once."""

    per_second: float
    burst: int


class TokenBucket:
    def __init__(self, rate: Rate, clock: Clock = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._tokens = float(rate.burst)
        self._updated = clock()

    def take(self) -> float:
        """Take one token. Returns 0.0 on success, else the seconds until one is available."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(float(self._rate.burst), self._tokens + elapsed * self._rate.per_second)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate.per_second


class KeyedLimiter:
    """One token bucket per key (a client address), for at most `capacity` keys."""

    def __init__(
        self, rate: Rate, *, capacity: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self._rate = rate
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._clock)
            self._buckets[key] = bucket
            if len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectionLimiter:
    """Counts open connections in total and per client address."""

    def __init__(self, *, total: int, per_address: int) -> None:
        self._total_limit = total
        self._per_address_limit = per_address
        self._total = 0
        self._by_address: dict[str, int] = {}

    def try_acquire(self, address: str) -> str | None:
        """Count a new connection, or return why it is refused ("total" or "per_address")."""
        if self._total >= self._total_limit:
            return "total"
        if self._by_address.get(address, 0) >= self._per_address_limit:
            return "per_address"
        self._total += 1
        self._by_address[address] = self._by_address.get(address, 0) + 1
        return None

    def release(self, address: str) -> None:
        remaining = self._by_address.get(address, 0) - 1
        if remaining > 0:
            self._by_address[address] = remaining
        else:
            self._by_address.pop(address, None)
        self._total = max(0, self._total - 1)

    @property
    def total(self) -> int:
        return self._total

    @property
    def addresses(self) -> int:
        return len(self._by_address)
