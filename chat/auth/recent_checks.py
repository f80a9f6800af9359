"""Credentials this node found good a few seconds ago, for WebSocket handshakes.

A socket handshake with a token or session cookie cost a database read, the largest part of
what a connect costs (programs and tabs reconnecting by the hundred per second after a deploy
or a network blip). A socket is already trusted the way this cache trusts it: it stays open
until a revocation signal or the periodic re-check closes it. So a handshake may reuse a check
made here within `ttl` seconds. A revocation forgets the user's entries the moment this node
hears of it, before its sockets are closed; a revocation this node never hears of (a broker
outage) reaches the sockets at the next re-check, as it does for sockets opened a moment
earlier. HTTP requests always ask the database: signing out answers 401 everywhere at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from chat.auth.principal import Revocation, SignedIn

RECENT_SECONDS = 10.0
MAX_RECENT = 20_000


class RecentChecks:
    def __init__(
        self,
        *,
        ttl: float = RECENT_SECONDS,
        capacity: int = MAX_RECENT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._checked: OrderedDict[str, tuple[SignedIn, float]] = OrderedDict()
        # Bumped by every revocation: a check under way when one arrived is not kept.
        self._revocations = 0

    def get(self, key: str) -> SignedIn | None:
        held = self._checked.get(key)
        if held is None:
            return None
        principal, until = held
        if until <= self._clock():
            del self._checked[key]
            return None
        return principal

    def started(self) -> int:
        """Call before a database check; hand the number to `keep`."""
        return self._revocations

    def keep(self, key: str, principal: SignedIn, started: int) -> None:
        if started != self._revocations:
            return
        self._checked[key] = (principal, self._clock() + self._ttl)
        self._checked.move_to_end(key)
        while len(self._checked) > self._capacity:
            self._checked.popitem(last=False)

    def forget(self, revocation: Revocation) -> None:
        self._revocations += 1
        stale = [key for key, (held, _) in self._checked.items() if revocation.covers(held)]
        for key in stale:
            del self._checked[key]
