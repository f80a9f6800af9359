"""Typing indicators: `{"type": "typing", "room"}` from a socket becomes, on every node, one
frame per room naming who is typing there: `{"type": "typing", "room", "users", "count",
"user", "expires_in"}`.

Aggregated per room, because per-person frames cost a big room as much as its messages (50
people typing in a room of 1,000 made 17,000 deliveries a second): each node keeps who is
typing in each room and sends the room's subscribers one shared frame at most every
`gap` seconds when someone starts, and a refresh every `refresh` seconds while anyone types.
The typists' own sockets get it too (the frame is shared); clients leave themselves out.

Ephemeral: a signal through the fan-out backend, never stored, never replayed. A person's
typing goes to the other nodes at most every `signal_every` seconds; each node forgets a typist
`lifetime` seconds after last hearing of them, and clients forget one `expires_in` seconds after
the last frame naming them, when a frame leaves them out, or when their message arrives (stuck
indicators are the bug class element-web #2625 records). A message also tells the other nodes
the author stopped, so no node's refresh brings the indicator back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chat.auth.principal import Account
from chat.background import Background
from chat.broadcast.base import BroadcastBackend
from chat.broadcast.hub import Hub
from chat.events.frames import dumps
from chat.events.records import room_topic

logger = logging.getLogger(__name__)

SIGNAL_KIND = "typing"
# The page says "typing" at most every 3 s while keys are pressed; a little less here so that
# network jitter never coalesces one of its refreshes away.
SIGNAL_EVERY_SECONDS = 2.5
REFRESH_EVERY_SECONDS = 3.0
GAP_SECONDS = 1.0
# A node forgets a typist this long after last hearing of them: two refreshes may be missed.
LIFETIME_SECONDS = 6.0
# Clients drop an indicator this long after the last frame naming it: a little over two
# refreshes.
EXPIRES_IN_SECONDS = 7.0
MAX_NAMED = 10  # a frame names the first ten typists and counts the rest
TICK_SECONDS = 0.25
_MAX_REMEMBERED = 50_000


@dataclass
class _Room:
    """Who is typing in one room, as this node knows it."""

    id: int
    name: str
    typists: dict[int, tuple[object, float]] = field(default_factory=dict)  # id -> (user, until)
    last_frame: float = float("-inf")
    news: bool = False  # someone started since the last frame


class Typing:
    def __init__(
        self,
        *,
        hub: Hub,
        backend: BroadcastBackend,
        signal_every: float = SIGNAL_EVERY_SECONDS,
        refresh: float = REFRESH_EVERY_SECONDS,
        gap: float = GAP_SECONDS,
        lifetime: float = LIFETIME_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._backend = backend
        self._signal_every = signal_every
        self._refresh = refresh
        self._gap = gap
        self._lifetime = lifetime
        self._clock = clock
        # Keyed by room name: the socket knows a stored message's room by name, and a name
        # never changes or moves to another room.
        self._rooms: dict[str, _Room] = {}
        self._signalled: OrderedDict[tuple[int, str], float] = OrderedDict()
        self._stops: list[str] = []  # signals for the other nodes, sent by the next tick
        self._node = secrets.token_hex(6)  # tells our own signals from the other nodes'
        self._background = Background("typing")

    # ---- what happens ----

    async def typed(self, account: Account, room_id: int, room: str) -> bool:
        """Someone typed in a room they may post in; whether the other nodes were told (they
        are told at most every `signal_every` seconds per person and room)."""
        user = account.public()
        self._heard(room_id, room, account.id, user)
        key = (account.id, room)
        now = self._clock()
        last = self._signalled.get(key)
        if last is not None and now - last < self._signal_every:
            return False
        self._signalled[key] = now
        self._signalled.move_to_end(key)
        while len(self._signalled) > _MAX_REMEMBERED:
            self._signalled.popitem(last=False)
        await self._backend.publish_signal(
            self._signal(room_id=room_id, room=room, user=user, stopped=False)
        )
        return True

    def stopped(self, user_id: int, room: str) -> None:
        """Their message arrived: clients dropped the indicator; so do all nodes, and the next
        keystroke is news at once."""
        self._signalled.pop((user_id, room), None)
        state = self._rooms.get(room)
        if state is not None and state.typists.pop(user_id, None) is not None:
            stop = {"id": user_id}
            self._stops.append(self._signal(room_id=state.id, room=room, user=stop, stopped=True))

    def on_signal(self, signal: str) -> None:
        try:
            payload: Any = json.loads(signal)
            if not isinstance(payload, dict) or payload.get("kind") != SIGNAL_KIND:
                return
            if payload.get("node") == self._node:
                return  # ours: this node heard it first-hand
            room_id = int(payload["room_id"])
            room = str(payload["room"])
            user = payload["user"]
            user_id = int(user["id"])
            stopped = bool(payload.get("stopped", False))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed typing signal: %r", signal[:120])
            return
        if stopped:
            state = self._rooms.get(room)
            if state is not None:
                state.typists.pop(user_id, None)
        else:
            self._heard(room_id, room, user_id, user)

    # ---- this node's rooms ----

    def _heard(self, room_id: int, room: str, user_id: int, user: object) -> None:
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _Room(room_id, room)
        now = self._clock()
        if user_id not in state.typists:
            state.news = True
        state.typists[user_id] = (user, now + self._lifetime)
        if state.news and now - state.last_frame >= self._gap:
            self._send(state, now)  # the first typist in a quiet room shows at once

    def tick(self) -> None:
        """Forget who stopped, and send each room its frame when one is due."""
        now = self._clock()
        for name, state in list(self._rooms.items()):
            gone = [user_id for user_id, (_, until) in state.typists.items() if until <= now]
            for user_id in gone:
                del state.typists[user_id]
            if not state.typists:
                del self._rooms[name]
                continue
            since = now - state.last_frame
            if (state.news and since >= self._gap) or since >= self._refresh:
                self._send(state, now)

    def _send(self, state: _Room, now: float) -> None:
        state.last_frame = now
        state.news = False
        users = [user for user, _ in state.typists.values()]
        frame = {
            "type": "typing",
            "room": state.name,
            "users": users[:MAX_NAMED],
            "count": len(users),
            "user": users[-1],  # the newest: the one-person frame of the first version
            "expires_in": EXPIRES_IN_SECONDS,
        }
        self._hub.deliver_ephemeral(room_topic(state.id), dumps(frame))

    def _signal(self, *, room_id: int, room: str, user: object, stopped: bool) -> str:
        signal: dict[str, object] = {
            "kind": SIGNAL_KIND,
            "node": self._node,
            "room_id": room_id,
            "room": room,
            "user": user,
        }
        if stopped:
            signal["stopped"] = True
        return json.dumps(signal, separators=(",", ":"))

    # ---- the clock ----

    def start(self) -> None:
        self._background.start(self._run())

    async def stop(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.tick()
            await self._publish_stops()

    async def _publish_stops(self) -> None:
        stops, self._stops = self._stops, []
        for signal in stops:
            try:
                await self._backend.publish_signal(signal)
            except Exception:  # the broker is down: the other nodes forget the typist anyway
                logger.warning("could not tell the other nodes a typist stopped", exc_info=True)
                return
