"""Typing indicators: coalesced per person and room, ephemeral, expiring on the client."""

from __future__ import annotations

import json

import pytest

from chat.auth.principal import Account
from chat.broadcast.hub import Hub
from chat.broadcast.memory import MemoryBackend
from chat.events.records import room_topic
from chat.realtime.typing import EXPIRES_IN_SECONDS, Typing

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
    return Typing(hub=hub, backend=backend, every=3.0, clock=clock), hub, signals, clock


@pytest.mark.anyio
async def test_keystrokes_are_coalesced_per_person_and_room() -> None:
    typing, _, signals, clock = await typing_on_a_node()
    assert await typing.typed(ADA, 1, "ops")
    clock.now += 1.0
    assert not await typing.typed(ADA, 1, "ops")
    clock.now += 1.9
    assert not await typing.typed(ADA, 1, "ops")
    # Someone else, or another room, is news of its own.
    assert await typing.typed(BOB, 1, "ops")
    assert await typing.typed(ADA, 2, "den")
    clock.now += 0.1  # 3 s after ada's first broadcast in ops: a refresh
    assert await typing.typed(ADA, 1, "ops")
    assert [(s["user"]["id"], s["room"]) for s in map(json.loads, signals)] == [
        (3, "ops"),
        (4, "ops"),
        (3, "den"),
        (3, "ops"),
    ]


@pytest.mark.anyio
async def test_after_a_message_the_next_keystroke_is_news_at_once() -> None:
    typing, _, signals, clock = await typing_on_a_node()
    assert await typing.typed(ADA, 1, "ops")
    typing.stopped(ADA.id, "ops")  # her message arrived: clients dropped the indicator
    clock.now += 0.5
    assert await typing.typed(ADA, 1, "ops")
    assert len(signals) == 2


@pytest.mark.anyio
async def test_one_expiring_frame_for_the_rooms_other_sockets_on_this_node() -> None:
    typing, hub, signals, _ = await typing_on_a_node()
    in_room = hub.subscribe(user_id=4, topics=[room_topic(1)])
    own_tab = hub.subscribe(user_id=ADA.id, topics=[room_topic(1)])
    elsewhere = hub.subscribe(user_id=5, topics=[room_topic(2)])
    await typing.typed(ADA, 1, "ops")
    typing.on_signal(signals[0])  # the broker's echo (or the backend's own hand-back)
    assert in_room.pending == 1, "once, however the signal comes back"
    assert own_tab.pending == 0 and elsewhere.pending == 0
    frame = await in_room.next_frame()
    assert frame is not None
    assert json.loads(frame.text) == {
        "type": "typing",
        "room": "ops",
        "user": ADA.public(),
        "expires_in": EXPIRES_IN_SECONDS,
    }
    # Expiry is the client's, a little after two refreshes would have come: a stuck
    # indicator lasts seconds, not forever.
    assert 2 * 3.0 < EXPIRES_IN_SECONDS <= 10


@pytest.mark.anyio
async def test_another_nodes_signal_reaches_the_rooms_sockets_here_but_the_typists() -> None:
    there, _, signals, _ = await typing_on_a_node()
    here, hub, _, _ = await typing_on_a_node()
    in_room = hub.subscribe(user_id=4, topics=[room_topic(1)])
    own_tab = hub.subscribe(user_id=ADA.id, topics=[room_topic(1)])
    await there.typed(ADA, 1, "ops")
    here.on_signal(signals[0])
    assert in_room.pending == 1 and own_tab.pending == 0


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
