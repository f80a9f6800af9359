"""A socket's typing passes: held while it listens to the room, for a bounded time."""

from __future__ import annotations

from chat.events.records import room_topic
from chat.realtime.passes import MAX_PASSES, TypingPasses


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_pass_holds_while_the_socket_listens_and_not_past_its_time() -> None:
    clock = Clock()
    passes = TypingPasses(ttl=30.0, clock=clock)
    listening = {room_topic(7)}
    assert passes.room_id("ops", listening) is None  # never granted: ask the database
    passes.grant("ops", 7, listening)
    assert passes.room_id("ops", listening) == 7
    clock.now = 29.9
    assert passes.room_id("ops", listening) == 7
    clock.now = 30.0
    assert passes.room_id("ops", listening) is None


def test_a_removed_member_loses_the_pass_with_the_rooms_topic() -> None:
    passes = TypingPasses(clock=Clock())
    listening = {room_topic(7)}
    passes.grant("ops", 7, listening)
    listening.discard(room_topic(7))  # what the hub does to every socket of a removed member
    assert passes.room_id("ops", listening) is None
    listening.add(room_topic(7))  # listening again is not a pass: that is the database's call
    assert passes.room_id("ops", listening) is None


def test_no_pass_for_a_room_the_socket_does_not_listen_to_and_few_in_all() -> None:
    passes = TypingPasses(clock=Clock())
    passes.grant("ops", 7, set())
    assert passes.room_id("ops", {room_topic(7)}) is None
    everywhere = {room_topic(n) for n in range(MAX_PASSES + 1)}
    for n in range(MAX_PASSES + 1):
        passes.grant(f"r{n}", n, everywhere)
    assert len(passes._passes) <= MAX_PASSES
