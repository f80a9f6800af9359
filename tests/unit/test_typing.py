"""Typing indicators: coalesced per person and room, ephemeral, expiring on the client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.auth.principal import Account
from chat.broadcast.hub import Hub, Subscriber
from chat.broadcast.memory import MemoryBackend
from chat.events.records import room_topic
from chat.realtime.typing import (
    EXPIRES_IN_SECONDS,
    GAP_SECONDS,
    LIFETIME_SECONDS,
    MAX_NAMED,
    REFRESH_EVERY_SECONDS,
    SIGNAL_EVERY_SECONDS,
    TICK_SECONDS,
    Typing,
)

ADA = Account(id=3, username="ada", display_name="Ada", role="member")
BOB = Account(id=4, username="bob", display_name="Bob", role="member")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def typing_on_a_node() -> tuple[Typing, Hub, list[str], Clock]:
    hub = Hub(queue_size=100)
    backend = MemoryBackend()
    signals: list[str] = []
    await backend.start(hub.deliver, on_signal=signals.append)
    clock = Clock()
    return Typing(hub=hub, backend=backend, clock=clock), hub, signals, clock


async def typing_frames(subscriber: Subscriber) -> list[dict[str, Any]]:
    """What the subscriber was offered, read off its queue."""
    frames = []
    while subscriber.pending:
        frame = await subscriber.next_frame()
        assert frame is not None
        subscriber.sent()
        frames.append(json.loads(frame.text))
    return frames


def named(frames: list[dict[str, Any]]) -> list[list[str]]:
    return [[user["username"] for user in frame["users"]] for frame in frames]


@pytest.mark.anyio
async def test_the_other_nodes_hear_of_a_typist_at_most_every_few_seconds() -> None:
    typing, _, signals, clock = await typing_on_a_node()
    assert await typing.typed(ADA, 1, "ops")
    clock.now += 1.0
    assert not await typing.typed(ADA, 1, "ops")
    clock.now += 1.4
    assert not await typing.typed(ADA, 1, "ops")
    # Someone else, or another room, is news of its own.
    assert await typing.typed(BOB, 1, "ops")
    assert await typing.typed(ADA, 2, "den")
    clock.now += SIGNAL_EVERY_SECONDS - 2.4  # her first signal in ops was that long ago
    assert await typing.typed(ADA, 1, "ops")
    assert [(s["user"]["id"], s["room"]) for s in map(json.loads, signals)] == [
        (3, "ops"),
        (4, "ops"),
        (3, "den"),
        (3, "ops"),
    ]


@pytest.mark.anyio
async def test_one_shared_frame_per_room_names_everyone_typing_there() -> None:
    typing, hub, _, clock = await typing_on_a_node()
    in_room = hub.subscribe(user_id=4, topics=[room_topic(1)])
    own_tab = hub.subscribe(user_id=ADA.id, topics=[room_topic(1)])
    elsewhere = hub.subscribe(user_id=5, topics=[room_topic(2)])
    await typing.typed(ADA, 1, "ops")  # the first typist in a quiet room: at once
    frames = await typing_frames(in_room)
    assert frames == [
        {
            "type": "typing",
            "room": "ops",
            "users": [ADA.public()],
            "count": 1,
            "user": ADA.public(),
            "expires_in": EXPIRES_IN_SECONDS,
        }
    ]
    # The same frame to her own tab: clients leave themselves out.
    assert await typing_frames(own_tab) == frames and elsewhere.pending == 0
    clock.now += 0.3
    await typing.typed(BOB, 1, "ops")  # news, but within the gap: the tick sends it
    assert in_room.pending == 0
    clock.now += GAP_SECONDS
    typing.tick()
    assert named(await typing_frames(in_room)) == [["ada", "bob"]]
    # Expiry is the client's, a little after two refreshes would have come: a stuck
    # indicator lasts seconds, not forever.
    assert 2 * REFRESH_EVERY_SECONDS < EXPIRES_IN_SECONDS <= 10


@pytest.mark.anyio
async def test_keystrokes_cost_one_frame_per_refresh_however_many_type() -> None:
    typing, hub, _, clock = await typing_on_a_node()
    listener = hub.subscribe(user_id=99, topics=[room_topic(1)])
    people = [
        Account(id=10 + n, username=f"u{n}", display_name=f"U{n}", role="member") for n in range(50)
    ]
    for person in people:
        await typing.typed(person, 1, "ops")
    sent = 0
    ticks_between_keystrokes = round(3.0 / TICK_SECONDS)  # the page's pace
    for tick in range(int(30 / TICK_SECONDS)):  # 30 s of everyone typing
        clock.now += TICK_SECONDS
        for person in people:
            if person.id % ticks_between_keystrokes == tick % ticks_between_keystrokes:
                await typing.typed(person, 1, "ops")
        typing.tick()
        sent += len(await typing_frames(listener))
    assert sent <= 1 + 30 / REFRESH_EVERY_SECONDS + 1
    clock.now += REFRESH_EVERY_SECONDS
    typing.tick()
    [frame] = await typing_frames(listener)
    assert frame["count"] == 50 and len(frame["users"]) == MAX_NAMED


@pytest.mark.anyio
async def test_a_typist_who_stops_is_left_out_and_a_quiet_room_gets_nothing() -> None:
    typing, hub, _, clock = await typing_on_a_node()
    listener = hub.subscribe(user_id=99, topics=[room_topic(1)])
    await typing.typed(ADA, 1, "ops")
    await typing.typed(BOB, 1, "ops")
    clock.now += GAP_SECONDS
    typing.tick()
    assert named(await typing_frames(listener)) == [["ada"], ["ada", "bob"]]
    for _ in range(3):  # bob keeps typing; ada went quiet
        clock.now += REFRESH_EVERY_SECONDS
        await typing.typed(BOB, 1, "ops")
        typing.tick()
    assert named(await typing_frames(listener)) == [["ada", "bob"], ["bob"], ["bob"]]
    clock.now += LIFETIME_SECONDS
    for _ in range(5):
        clock.now += REFRESH_EVERY_SECONDS
        typing.tick()
    assert listener.pending == 0


@pytest.mark.anyio
async def test_after_a_message_the_next_keystroke_is_news_on_every_node() -> None:
    there, _, signals, clock = await typing_on_a_node()
    here, hub, _, here_clock = await typing_on_a_node()
    listener = hub.subscribe(user_id=99, topics=[room_topic(1)])
    assert await there.typed(ADA, 1, "ops")
    here.on_signal(signals[-1])
    there.stopped(ADA.id, "ops")  # her message arrived: clients dropped the indicator
    await there._publish_stops()
    here.on_signal(signals[-1])
    assert json.loads(signals[-1])["stopped"] is True
    for _ in range(3):  # no refresh brings her back
        here_clock.now += REFRESH_EVERY_SECONDS
        here.tick()
    assert named(await typing_frames(listener)) == [["ada"]]
    clock.now += 0.5
    assert await there.typed(ADA, 1, "ops"), "news at once, not coalesced"
    here.on_signal(signals[-1])
    here.tick()
    assert named(await typing_frames(listener)) == [["ada"]]


@pytest.mark.anyio
async def test_another_nodes_signal_reaches_the_rooms_sockets_here_once() -> None:
    there, _, signals, _ = await typing_on_a_node()
    here, hub, _, _ = await typing_on_a_node()
    in_room = hub.subscribe(user_id=4, topics=[room_topic(1)])
    await there.typed(ADA, 1, "ops")
    here.on_signal(signals[0])
    here.on_signal(signals[0])  # the broker's echo, or a redelivery: still one typist
    here.tick()
    assert named(await typing_frames(in_room)) == [["ada"]]
    there.on_signal(signals[0])  # a node's own signal is ignored: it heard it first-hand
    assert there._rooms["ops"].news is False


@pytest.mark.parametrize(
    "signal",
    [
        "not json",
        "[]",
        '{"kind": "typing"}',
        '{"kind": "typing", "room_id": "x", "room": "ops", "user": {}}',
        '{"kind": "presence", "room_id": 1, "room": "ops", "user": {}}',
    ],
)
def test_other_or_malformed_signals_deliver_nothing(signal: str) -> None:
    hub = Hub(queue_size=10)
    subscriber = hub.subscribe(topics=[room_topic(1)])
    Typing(hub=hub, backend=MemoryBackend()).on_signal(signal)
    assert subscriber.pending == 0
