"""The safety net behind membership changes on open sockets.

A member who leaves or is removed stops receiving a room at once because the `member_left`
change unsubscribes their sockets on every node as it is delivered. A node that missed the
change live (its broker was down) gets it in the relay's replay; until then, and against any
bug in between, every `interval` seconds each node checks its sockets' private-room
subscriptions against the database (two queries per node, whatever the number of sockets) and
drops the ones no membership backs any more.
"""

from __future__ import annotations

import asyncio
import logging

from chat.background import Background
from chat.broadcast.hub import Hub, Subscriber
from chat.events.records import parse_topic, room_topic
from chat.rooms.service import RoomService

logger = logging.getLogger(__name__)


class SubscriptionAudit:
    def __init__(self, *, hub: Hub, rooms: RoomService, interval: float) -> None:
        self._hub = hub
        self._rooms = rooms
        self._interval = interval
        self._background = Background("subscription-audit")

    def start(self) -> None:
        self._background.start(self._forever())

    async def stop(self) -> None:
        await self._background.stop()

    async def run_once(self) -> int:
        """Drop private-room subscriptions without a membership; how many were dropped."""
        held: list[tuple[Subscriber, int, int]] = []  # (subscriber, room id, user id)
        for subscriber in self._hub.subscribers():
            if subscriber.user_id is None:
                continue
            for topic in subscriber.topics:
                parsed = parse_topic(topic)
                if parsed is not None and parsed[0] == "r":
                    held.append((subscriber, parsed[1], subscriber.user_id))
        if not held:
            return 0
        private = await self._rooms.private_room_ids(sorted({room for _, room, _ in held}))
        if not private:
            return 0
        users = sorted({user for _, room, user in held if room in private})
        members = await self._rooms.live_memberships(users)
        dropped = 0
        for subscriber, room, user in held:
            if room in private and (room, user) not in members:
                self._hub.remove_topic(subscriber, room_topic(room))
                dropped += 1
        return dropped

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                dropped = await self.run_once()
            except Exception:  # the database may be away for a while; try again next time
                logger.warning("auditing room subscriptions failed", exc_info=True)
                continue
            if dropped:
                logger.warning(
                    "dropped %d private-room subscription(s) no membership backs "
                    "(a membership change was missed live)",
                    dropped,
                )
