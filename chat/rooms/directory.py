"""Room names and ids, remembered: both never change once a room exists, so every node may keep
them for good (bounded, least recently used forgotten). Frames name rooms; rows hold ids."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.rooms.names import GENERAL
from chat.rooms.repository import RoomRepository

CAPACITY = 100_000
# The rooms migration creates general with id 1, and a room is never renamed nor deleted.
GENERAL_ID = 1


class RoomDirectory:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._names: OrderedDict[int, str] = OrderedDict()
        self._ids: dict[str, int] = {}
        self.remember(GENERAL_ID, GENERAL)

    def remember(self, room_id: int, name: str) -> None:
        self._names[room_id] = name
        self._names.move_to_end(room_id)
        self._ids[name] = room_id
        while len(self._names) > CAPACITY:
            _, forgotten = self._names.popitem(last=False)
            self._ids.pop(forgotten, None)

    def known_name(self, room_id: int) -> str | None:
        return self._names.get(room_id)

    async def names(self, room_ids: Iterable[int]) -> dict[int, str]:
        wanted = set(room_ids)
        missing = [room_id for room_id in wanted if room_id not in self._names]
        if missing:
            async with self._sessionmaker() as session:
                for room in (await RoomRepository(session).rooms_by_ids(missing)).values():
                    self.remember(room.id, room.name)
        return {room_id: self._names[room_id] for room_id in wanted if room_id in self._names}

    async def id_of(self, name: str) -> int | None:
        room_id = self._ids.get(name)
        if room_id is not None:
            return room_id
        async with self._sessionmaker() as session:
            room = await RoomRepository(session).room_by_name(name)
        if room is None:
            return None
        self.remember(room.id, room.name)
        return room.id
