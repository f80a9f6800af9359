"""Where one socket was lately found allowed to type: a typing signal every few seconds from
each of fifty people would otherwise cost two database reads apiece, more than the frames it
sends.

A pass holds only while the socket still listens to the room: a member removed from it stops
listening at once (the hub drops the room's topic from all their sockets), and so loses the
pass with it. Anything else that would end the right to post there (the room archived, a
guest policy changed) ends it within `ttl` seconds; typing is an ephemeral hint, and every
message is still checked against the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from chat.events.records import room_topic

PASS_SECONDS = 30.0
MAX_PASSES = 1024


class TypingPasses:
    def __init__(
        self, *, ttl: float = PASS_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._passes: dict[str, tuple[int, float]] = {}  # room name -> (room id, until)

    def room_id(self, room: str, listening: Collection[str]) -> int | None:
        """The id of `room` if this socket may type there without asking the database."""
        held = self._passes.get(room)
        if held is None:
            return None
        room_id, until = held
        if until <= self._clock() or room_topic(room_id) not in listening:
            del self._passes[room]
            return None
        return room_id

    def grant(self, room: str, room_id: int, listening: Collection[str]) -> None:
        """The database says this socket may type in `room`: remember it while it listens
        there (it can listen to a bounded number of rooms, so this stays bounded too)."""
        if room_topic(room_id) not in listening:
            return
        if len(self._passes) >= MAX_PASSES:
            self._passes.clear()  # a socket that wandered through a thousand rooms asks again
        self._passes[room] = (room_id, self._clock() + self._ttl)
