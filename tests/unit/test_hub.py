from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chat.broadcast.base import Envelope, Unmeasured
from chat.broadcast.hub import Hub, Subscriber
from chat.events.records import Effect, presence_topic, room_topic, user_topic
from chat.wire import SharedFrame

ROOM = room_topic(1)
_seq = iter(range(1, 1_000_000))


def batch(*texts: str, topic: str = ROOM) -> list[Envelope]:
    return [Envelope(next(_seq), topic, text) for text in texts]


async def drain(subscriber: Subscriber, count: int) -> list[str]:
    texts = []
    for _ in range(count):
        frame = await subscriber.next_frame()
        assert frame is not None
        texts.append(frame.text)
    return texts


@pytest.mark.anyio
async def test_every_subscriber_gets_every_frame_in_order() -> None:
    hub = Hub(queue_size=10)
    first, second = hub.subscribe(topics=[ROOM]), hub.subscribe(topics=[ROOM])
    hub.deliver(batch("a", "b"))
    hub.deliver(batch("c"))
    assert await drain(first, 3) == ["a", "b", "c"]
    assert await drain(second, 3) == ["a", "b", "c"]


@pytest.mark.anyio
async def test_a_broadcast_is_one_shared_object() -> None:
    hub = Hub(queue_size=10)
    first, second = hub.subscribe(topics=[ROOM]), hub.subscribe(topics=[ROOM])
    hub.deliver(batch("x"))
    assert await first.next_frame() is await second.next_frame()


@pytest.mark.anyio
async def test_a_full_queue_evicts_only_that_subscriber() -> None:
    hub = Hub(queue_size=2)
    slow, fast = hub.subscribe(topics=[ROOM]), hub.subscribe(topics=[ROOM])
    hub.deliver(batch("1"))
    hub.deliver(batch("2"))
    assert await drain(fast, 2) == ["1", "2"]
    hub.deliver(batch("3"))  # slow's queue is full: it is evicted, fast still receives
    assert slow.evicted
    assert not fast.evicted
    assert await drain(fast, 1) == ["3"]
    assert len(hub) == 1
    assert slow.pending == 0  # its backlog is dropped: it catches up from history
    assert await slow.next_frame() is None  # its sender stops at once


@pytest.mark.anyio
async def test_a_waiting_sender_wakes_for_a_frame_and_for_eviction() -> None:
    hub = Hub(queue_size=1)
    subscriber = hub.subscribe(topics=[ROOM])
    waiting = asyncio.create_task(subscriber.next_frame())
    await asyncio.sleep(0)
    hub.deliver(batch("hello"))
    frame = await asyncio.wait_for(waiting, 1)
    assert frame is not None and frame.text == "hello"
    waiting = asyncio.create_task(subscriber.next_frame())
    await asyncio.sleep(0)
    hub.deliver(batch("a"))
    hub.deliver(batch("b"))  # queue of one: evicted before the sender ran
    # An evicted reader's backlog is dropped: it will catch up from history after reconnecting.
    assert await asyncio.wait_for(waiting, 1) is None


@pytest.mark.anyio
async def test_unsubscribe_stops_delivery() -> None:
    hub = Hub(queue_size=2)
    subscriber = hub.subscribe(topics=[ROOM])
    hub.unsubscribe(subscriber)
    hub.deliver(batch("x"))
    assert subscriber.pending == 0
    assert len(hub) == 0


@pytest.mark.anyio
async def test_direct_writes_only_when_nothing_is_queued_or_in_flight() -> None:
    written: list[str] = []
    accepting = True

    def direct(frame: SharedFrame) -> bool:
        if accepting:
            written.append(frame.text)
        return accepting

    hub = Hub(queue_size=10)
    subscriber = hub.subscribe(topics=[ROOM])
    subscriber.direct = direct
    hub.deliver(batch("1"))  # written at once
    accepting = False
    hub.deliver(batch("2"))  # the connection cannot take it: queued
    accepting = True
    hub.deliver(batch("3"))  # "2" is still queued: "3" must queue behind it, not overtake it
    assert written == ["1"]
    frame = await subscriber.next_frame()
    assert frame is not None and frame.text == "2"
    hub.deliver(batch("4"))  # the sender holds "2" unsent: still no overtaking
    assert written == ["1"]
    subscriber.sent()
    frame = await subscriber.next_frame()
    assert frame is not None and frame.text == "3"
    subscriber.sent()
    frame = await subscriber.next_frame()
    assert frame is not None and frame.text == "4"
    subscriber.sent()
    hub.deliver(batch("5"))  # idle again: direct
    assert written == ["1", "5"]


def test_a_batch_reaches_each_connection_in_one_write_before_the_next_connection() -> None:
    events: list[str] = []

    def connection(name: str) -> tuple[Callable[[SharedFrame], bool], Callable[[], None]]:
        def direct(frame: SharedFrame) -> bool:
            events.append(f"{name} takes {frame.text}")
            return True

        def flush() -> None:
            events.append(f"{name} writes")

        return direct, flush

    hub = Hub(queue_size=10)
    for name in ("p", "q"):
        subscriber = hub.subscribe(topics=[ROOM])
        subscriber.direct, subscriber.flush = connection(name)
    hub.deliver(batch("a", "b", "c"))  # one published batch
    per_connection = {
        name: [event for event in events if event.startswith(name)] for name in ("p", "q")
    }
    for name, seen in per_connection.items():
        assert seen == [f"{name} takes a", f"{name} takes b", f"{name} takes c", f"{name} writes"]
    # Subscriber after subscriber: one is written before the next is offered anything.
    assert events.index(f"{events[0][0]} writes") < len(events) // 2


def test_frames_offered_outside_a_batch_are_written_at_once() -> None:
    written: list[str] = []
    hub = Hub(queue_size=10)
    subscriber = hub.subscribe(topics=[ROOM])
    subscriber.direct = lambda frame: written.append(f"take {frame.text}") is None
    subscriber.flush = lambda: written.append("write")
    assert subscriber.offer("error frame")
    assert written == ["take error frame", "write"]


@pytest.mark.anyio
async def test_frames_reach_only_the_subscribers_of_their_topic() -> None:
    hub = Hub(queue_size=10)
    in_one = hub.subscribe(topics=[room_topic(1)])
    in_two = hub.subscribe(topics=[room_topic(2)])
    in_both = hub.subscribe(topics=[room_topic(1), room_topic(2)])
    hub.deliver([*batch("1a", topic=room_topic(1)), *batch("2a", topic=room_topic(2))])
    hub.deliver(batch("1b", topic=room_topic(1)))
    assert await drain(in_one, 2) == ["1a", "1b"]
    assert await drain(in_two, 1) == ["2a"]
    assert await drain(in_both, 3) == ["1a", "2a", "1b"]  # in log order, across rooms
    assert in_two.pending == 0 and in_one.pending == 0


@pytest.mark.anyio
async def test_a_user_topic_reaches_every_socket_of_that_user_only() -> None:
    hub = Hub(queue_size=10)
    tab, phone = hub.subscribe(user_id=7), hub.subscribe(user_id=7)
    someone_else = hub.subscribe(user_id=8)
    hub.deliver(batch("read", topic=user_topic(7)))
    assert await drain(tab, 1) == ["read"]
    assert await drain(phone, 1) == ["read"]
    assert someone_else.pending == 0


@pytest.mark.anyio
async def test_membership_effects_apply_in_log_order_within_a_batch() -> None:
    hub = Hub(queue_size=10)
    joiner = hub.subscribe(user_id=7)  # not in room 3 yet
    member = hub.subscribe(user_id=8, topics=[room_topic(3)])
    topic = room_topic(3)
    hub.deliver(
        [
            Envelope(1, topic, "before"),
            Envelope(2, topic, "joined", Effect("join", 7, 3)),
            Envelope(3, topic, "during"),
            Envelope(4, topic, "left", Effect("leave", 7, 3)),
            Envelope(5, topic, "after"),
        ]
    )
    # The joiner gets its own join (subscribed before it is delivered) and its own leave
    # (unsubscribed right after), and nothing outside its membership.
    assert await drain(joiner, 3) == ["joined", "during", "left"]
    assert joiner.pending == 0
    assert topic not in joiner.topics
    assert await drain(member, 5) == ["before", "joined", "during", "left", "after"]


def test_a_member_who_leaves_stops_hearing_the_rooms_presence_too() -> None:
    hub = Hub(queue_size=10)
    leaver = hub.subscribe(user_id=7, topics=[room_topic(3), presence_topic(3)])
    watcher = hub.subscribe(user_id=8, topics=[room_topic(3), presence_topic(3)])
    hub.deliver([Envelope(1, room_topic(3), "left", Effect("leave", 7, 3))])
    assert leaver.topics == {user_topic(7)}
    assert hub.deliver_ephemeral(presence_topic(3), "online") == 1
    assert watcher.pending == 2 and leaver.pending == 1


def test_a_node_keeps_no_index_entry_for_a_room_nobody_here_is_in() -> None:
    hub = Hub(queue_size=10)
    subscriber = hub.subscribe(topics=[room_topic(1)])
    assert hub.wants(room_topic(1)) and not hub.wants(room_topic(2))
    hub.deliver(batch("nobody listens", topic=room_topic(2)))
    assert subscriber.pending == 0
    hub.unsubscribe(subscriber)
    assert not hub.wants(room_topic(1))


def test_close_matching_stops_delivery_at_once_and_asks_the_connection_to_close() -> None:
    hub = Hub(queue_size=10)
    closed: list[tuple[int, str]] = []
    doomed = hub.subscribe("ada", topics=[ROOM])
    doomed.on_close_request = lambda code, reason: closed.append((code, reason))
    spared = hub.subscribe("bob", topics=[ROOM])
    assert hub.close_matching(lambda identity: identity == "ada", 4401, "revoked") == 1
    hub.deliver(batch("after"))
    assert closed == [(4401, "revoked")]
    assert doomed.pending == 0
    assert spared.pending == 1


class Counted(Unmeasured):
    def __init__(self) -> None:
        self.deliveries: list[int] = []
        self.evictions = 0

    def delivered(self, count: int) -> None:
        self.deliveries.append(count)

    def evicted(self) -> None:
        self.evictions += 1


def test_deliveries_are_counted_once_per_batch_and_evictions_once_each() -> None:
    metrics = Counted()
    hub = Hub(queue_size=2, metrics=metrics)
    slow, _fast, _other = (
        hub.subscribe(topics=[ROOM]),
        hub.subscribe(topics=[ROOM]),
        hub.subscribe(topics=[ROOM]),
    )
    hub.deliver(batch("a", "b"))
    assert metrics.deliveries == [6]  # one call for 2 frames x 3 subscribers
    hub.unsubscribe(_fast)
    hub.unsubscribe(_other)
    slow.offer("an error frame for slow alone")  # its own frame overflows its queue
    assert slow.evicted
    assert metrics.evictions == 1
    hub.deliver(batch("c"))  # the evicted subscriber leaves without being counted again
    assert metrics.evictions == 1
    assert metrics.deliveries == [6, 0]
