from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chat.broadcast.base import Unmeasured
from chat.broadcast.hub import Hub, Subscriber
from chat.wire import SharedFrame


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
    first, second = hub.subscribe(), hub.subscribe()
    hub.deliver(["a", "b"])
    hub.deliver(["c"])
    assert await drain(first, 3) == ["a", "b", "c"]
    assert await drain(second, 3) == ["a", "b", "c"]


@pytest.mark.anyio
async def test_a_broadcast_is_one_shared_object() -> None:
    hub = Hub(queue_size=10)
    first, second = hub.subscribe(), hub.subscribe()
    hub.deliver(["x"])
    assert await first.next_frame() is await second.next_frame()


@pytest.mark.anyio
async def test_a_full_queue_evicts_only_that_subscriber() -> None:
    hub = Hub(queue_size=2)
    slow, fast = hub.subscribe(), hub.subscribe()
    hub.deliver(["1"])
    hub.deliver(["2"])
    assert await drain(fast, 2) == ["1", "2"]
    hub.deliver(["3"])  # slow's queue is full: it is evicted, fast still receives
    assert slow.evicted
    assert not fast.evicted
    assert await drain(fast, 1) == ["3"]
    assert len(hub) == 1
    assert slow.pending == 0  # its backlog is dropped: it catches up from history
    assert await slow.next_frame() is None  # its sender stops at once


@pytest.mark.anyio
async def test_a_waiting_sender_wakes_for_a_frame_and_for_eviction() -> None:
    hub = Hub(queue_size=1)
    subscriber = hub.subscribe()
    waiting = asyncio.create_task(subscriber.next_frame())
    await asyncio.sleep(0)
    hub.deliver(["hello"])
    frame = await asyncio.wait_for(waiting, 1)
    assert frame is not None and frame.text == "hello"
    waiting = asyncio.create_task(subscriber.next_frame())
    await asyncio.sleep(0)
    hub.deliver(["a"])
    hub.deliver(["b"])  # queue of one: evicted before the sender ran
    # An evicted reader's backlog is dropped: it will catch up from history after reconnecting.
    assert await asyncio.wait_for(waiting, 1) is None


@pytest.mark.anyio
async def test_unsubscribe_stops_delivery() -> None:
    hub = Hub(queue_size=2)
    subscriber = hub.subscribe()
    hub.unsubscribe(subscriber)
    hub.deliver(["x"])
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
    subscriber = hub.subscribe()
    subscriber.direct = direct
    hub.deliver(["1"])  # written at once
    accepting = False
    hub.deliver(["2"])  # the connection cannot take it: queued
    accepting = True
    hub.deliver(["3"])  # "2" is still queued: "3" must queue behind it, not overtake it
    assert written == ["1"]
    frame = await subscriber.next_frame()
    assert frame is not None and frame.text == "2"
    hub.deliver(["4"])  # the sender holds "2" unsent: still no overtaking
    assert written == ["1"]
    subscriber.sent()
    frame = await subscriber.next_frame()
    assert frame is not None and frame.text == "3"
    subscriber.sent()
    frame = await subscriber.next_frame()
    assert frame is not None and frame.text == "4"
    subscriber.sent()
    hub.deliver(["5"])  # idle again: direct
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
        subscriber = hub.subscribe()
        subscriber.direct, subscriber.flush = connection(name)
    hub.deliver(["a", "b", "c"])  # one published batch
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
    subscriber = hub.subscribe()
    subscriber.direct = lambda frame: written.append(f"take {frame.text}") is None
    subscriber.flush = lambda: written.append("write")
    assert subscriber.offer("error frame")
    assert written == ["take error frame", "write"]


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
    slow, _fast, _other = hub.subscribe(), hub.subscribe(), hub.subscribe()
    hub.deliver(["a", "b"])
    assert metrics.deliveries == [6]  # one call for 2 frames x 3 subscribers
    hub.unsubscribe(_fast)
    hub.unsubscribe(_other)
    slow.offer("an error frame for slow alone")  # its own frame overflows its queue
    assert slow.evicted
    assert metrics.evictions == 1
    hub.deliver(["c"])  # the evicted subscriber leaves without being counted again
    assert metrics.evictions == 1
    assert metrics.deliveries == [6, 0]
