"""Sign-in throttling: exponential back-off per username and per client address.

After a few free failures, every further failure doubles how long that key must wait (up to a
cap); a success clears the username's count. A throttled attempt is refused before the password
is checked (429 with Retry-After), so guessing costs the attacker time, not the server CPU.
Counts live in memory, per node, for at most `capacity` keys (least recently failed forgotten):
with N nodes behind a balancer an attacker gets at most N times the attempts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    free_failures: int  # failures allowed before any wait
    first_wait: float  # seconds, after the first failure beyond the free ones
    max_wait: float

    def wait_after(self, failures: int) -> float:
        beyond = failures - self.free_failures
        if beyond <= 0:
            return 0.0
        return min(self.max_wait, self.first_wait * 2.0 ** (beyond - 1))


USERNAME_BACKOFF = Backoff(free_failures=5, first_wait=1.0, max_wait=15 * 60.0)
# An office behind one NAT address shares this one: more free failures.
ADDRESS_BACKOFF = Backoff(free_failures=20, first_wait=1.0, max_wait=15 * 60.0)


@dataclass(slots=True)
class _Entry:
    failures: int
    blocked_until: float


class SignInThrottle:
    def __init__(
        self, *, capacity: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def retry_after(self, *, username: str, address: str) -> float:
        """Seconds until an attempt for this username from this address is allowed (0: now)."""
        now = self._clock()
        waits = [
            entry.blocked_until - now
            for key in (_user_key(username), _address_key(address))
            if (entry := self._entries.get(key)) is not None
        ]
        return max([0.0, *waits])

    def failed(self, *, username: str, address: str) -> None:
        now = self._clock()
        self._fail(_user_key(username), USERNAME_BACKOFF, now)
        self._fail(_address_key(address), ADDRESS_BACKOFF, now)

    def succeeded(self, *, username: str) -> None:
        self._entries.pop(_user_key(username), None)

    def _fail(self, key: str, backoff: Backoff, now: float) -> None:
        entry = self._entries.pop(key, None) or _Entry(failures=0, blocked_until=now)
        entry.failures += 1
        entry.blocked_until = now + backoff.wait_after(entry.failures)
        self._entries[key] = entry  # most recently failed last
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _user_key(username: str) -> str:
    return "user:" + username.strip().lower()[:64]


def _address_key(address: str) -> str:
    return "addr:" + address
