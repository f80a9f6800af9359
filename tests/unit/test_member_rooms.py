"""A node remembers each user's rooms for their sockets until a membership change says
otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chat.broadcast.base import Envelope
from chat.events.records import Effect
from chat.rooms.member_rooms import MemberRooms

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Database:
    def __init__(self) -> None:
        self.rooms = {1: [10, 11]}
        self.reads = 0

    def reader(self, user_id: int) -> Callable[[], Awaitable[list[int]]]:
        async def read() -> list[int]:
            self.reads += 1
            answer = list(self.rooms.get(user_id, []))  # the rows as the query found them
            await asyncio.sleep(0)
            return answer

        return read


def membership(action: str, user_id: int, room_id: int) -> Envelope:
    effect = Effect("join" if action == "join" else "leave", user_id, room_id)
    return Envelope(seq=1, topic=f"room:{room_id}", frame="{}", effect=effect)


async def test_read_once_then_remembered_until_the_ttl() -> None:
    clock, database = Clock(), Database()
    rooms = MemberRooms(ttl=60.0, clock=clock)
    assert await rooms.of(1, database.reader(1)) == [10, 11]
    assert await rooms.of(1, database.reader(1)) == [10, 11]
    assert database.reads == 1
    clock.now = 60.0
    await rooms.of(1, database.reader(1))
    assert database.reads == 2


async def test_a_join_or_leave_of_theirs_forgets_them_and_no_one_else() -> None:
    database = Database()
    database.rooms[2] = [10]
    rooms = MemberRooms(clock=Clock())
    await rooms.of(1, database.reader(1))
    await rooms.of(2, database.reader(2))
    database.rooms[1] = [10, 11, 12]
    rooms.on_changes([membership("join", 1, 12)])
    assert await rooms.of(1, database.reader(1)) == [10, 11, 12]
    assert await rooms.of(2, database.reader(2)) == [10]
    assert database.reads == 3
    database.rooms[1] = [10]
    rooms.on_changes([Envelope(seq=2, topic="room:10", frame="{}")])  # a message: no effect
    assert await rooms.of(1, database.reader(1)) == [10, 11, 12]
    rooms.on_changes([membership("leave", 1, 11), membership("leave", 1, 12)])
    assert await rooms.of(1, database.reader(1)) == [10]


async def test_a_read_under_way_during_a_change_is_not_remembered() -> None:
    database = Database()
    rooms = MemberRooms(clock=Clock())
    reading = asyncio.ensure_future(rooms.of(1, database.reader(1)))
    await asyncio.sleep(0)  # the read has started, with the old rooms
    database.rooms[1] = [10]
    rooms.on_changes([membership("leave", 1, 11)])
    assert await reading == [10, 11]  # what the database said then
    assert await rooms.of(1, database.reader(1)) == [10]  # read again, not the stale answer


async def test_bounded() -> None:
    database = Database()
    rooms = MemberRooms(capacity=3, clock=Clock())
    for user_id in range(10):
        await rooms.of(user_id, database.reader(user_id))
    assert len(rooms._rooms) == 3
