"""Each user's rooms as this node last read them, for the sockets they open.

A socket starts subscribed to its user's rooms. Reading them costs a database round trip per
connect, the biggest part of what 500 connects a second cost (presence churn: the event loop
saturated and a bystander room stalled). The answer changes only by a membership change, and
every membership change reaches every node through the change log as a join or leave effect
(replayed after a broker outage like any change): that is what forgets a user's entry here,
the same moment the hub moves their open sockets. `ttl` bounds what a change made behind the
server's back (straight in the database) can leave stale.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from chat.broadcast.base import Envelope

MEMBER_ROOMS_SECONDS = 60.0
MAX_USERS = 50_000


class MemberRooms:
    def __init__(
        self,
        *,
        ttl: float = MEMBER_ROOMS_SECONDS,
        capacity: int = MAX_USERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._rooms: OrderedDict[int, tuple[tuple[int, ...], float]] = OrderedDict()
        # Bumped by every forgetting: a read that was under way when a membership changed
        # may hold the old answer, so it is not kept.
        self._changes = 0

    async def of(self, user_id: int, read: Callable[[], Awaitable[Sequence[int]]]) -> list[int]:
        """The user's room ids: remembered, or `read` and remembered."""
        held = self._rooms.get(user_id)
        now = self._clock()
        if held is not None and held[1] > now:
            self._rooms.move_to_end(user_id)
            return list(held[0])
        changes = self._changes
        room_ids = tuple(await read())
        if changes == self._changes:
            self._rooms[user_id] = (room_ids, now + self._ttl)
            self._rooms.move_to_end(user_id)
            while len(self._rooms) > self._capacity:
                self._rooms.popitem(last=False)
        return list(room_ids)

    def on_changes(self, envelopes: Sequence[Envelope]) -> None:
        """Forget whoever joined or left a room in these changes."""
        for envelope in envelopes:
            if envelope.effect is not None:
                self._rooms.pop(envelope.effect.user_id, None)
                self._changes += 1
