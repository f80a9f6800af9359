"""Typing indicators: `{"type": "typing", "room"}` from a socket becomes, on every node, the
frame `{"type": "typing", "room", "user", "expires_in"}` to the room's subscribers.

Coalesced here: one broadcast per user and room per `every` seconds, however often a client
sends. Ephemeral: a signal through the fan-out backend, never stored, never replayed; a client
forgets an indicator `expires_in` seconds after its last refresh (stuck indicators are the bug
class element-web #2625 records), and when that person's message arrives. It goes to the room's
*other* sockets: the typist's own tabs are skipped. This node's sockets get it straight from
`typed`; the signal, named by node, is for the other nodes (the broker's echo, and a backend's
own local hand-back, are dropped: they delivered every frame twice here).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from chat.auth.principal import Account
from chat.broadcast.base import BroadcastBackend
from chat.broadcast.hub import Hub
from chat.events.frames import dumps
from chat.events.records import room_topic

logger = logging.getLogger(__name__)

SIGNAL_KIND = "typing"
BROADCAST_EVERY_SECONDS = 3.0
# Clients drop an indicator this long after its last refresh: a little over two refreshes.
EXPIRES_IN_SECONDS = 7.0
_MAX_REMEMBERED = 50_000


class Typing:
    def __init__(
        self,
        *,
        hub: Hub,
        backend: BroadcastBackend,
        every: float = BROADCAST_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._backend = backend
        self._every = every
        self._clock = clock
        # Keyed by room name: the socket knows a stored message's room by name, and a name
        # never changes or moves to another room.
        self._last: OrderedDict[tuple[int, str], float] = OrderedDict()
        self._node = secrets.token_hex(6)  # tells our own signals from the other nodes'

    async def typed(self, account: Account, room_id: int, room: str) -> bool:
        """Someone typed in a room they may post in; whether it was broadcast (or coalesced)."""
        key = (account.id, room)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._every:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > _MAX_REMEMBERED:
            self._last.popitem(last=False)
        user = account.public()
        self._hub.deliver_ephemeral(room_topic(room_id), _frame(room, user), skip_user=account.id)
        signal = {
            "kind": SIGNAL_KIND,
            "node": self._node,
            "room_id": room_id,
            "room": room,
            "user": user,
        }
        await self._backend.publish_signal(json.dumps(signal, separators=(",", ":")))
        return True

    def stopped(self, user_id: int, room: str) -> None:
        """Their message arrived: the next keystroke may broadcast again at once."""
        self._last.pop((user_id, room), None)

    def on_signal(self, signal: str) -> None:
        try:
            payload: Any = json.loads(signal)
            if not isinstance(payload, dict) or payload.get("kind") != SIGNAL_KIND:
                return
            if payload.get("node") == self._node:
                return  # ours: this node's sockets had it from `typed`
            room_id = int(payload["room_id"])
            user = payload["user"]
            user_id = int(user["id"])
            frame = _frame(str(payload["room"]), user)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed typing signal: %r", signal[:120])
            return
        self._hub.deliver_ephemeral(room_topic(room_id), frame, skip_user=user_id)


def _frame(room: str, user: object) -> str:
    return dumps({"type": "typing", "room": room, "user": user, "expires_in": EXPIRES_IN_SECONDS})
