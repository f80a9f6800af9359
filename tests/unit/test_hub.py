from __future__ import annotations

import pytest

from chat.broadcast.hub import Hub


@pytest.mark.anyio
async def test_every_subscriber_gets_every_frame_in_order() -> None:
    hub = Hub(queue_size=10)
    first, second = hub.subscribe(), hub.subscribe()
    for frame in ("a", "b", "c"):
        hub.deliver(frame)
    assert [await first.next_frame() for _ in range(3)] == ["a", "b", "c"]
    assert [await second.next_frame() for _ in range(3)] == ["a", "b", "c"]


@pytest.mark.anyio
async def test_a_full_queue_evicts_only_that_subscriber() -> None:
    hub = Hub(queue_size=2)
    slow, fast = hub.subscribe(), hub.subscribe()
    hub.deliver("1")
    hub.deliver("2")
    assert await fast.next_frame() == "1"
    assert await fast.next_frame() == "2"
    hub.deliver("3")  # slow's queue is full: it is evicted, fast still receives
    assert slow.evicted.is_set()
    assert not fast.evicted.is_set()
    assert await fast.next_frame() == "3"
    assert len(hub) == 1
    assert slow.pending == 2  # nothing more was buffered for it


@pytest.mark.anyio
async def test_unsubscribe_stops_delivery() -> None:
    hub = Hub(queue_size=2)
    subscriber = hub.subscribe()
    hub.unsubscribe(subscriber)
    hub.deliver("x")
    assert subscriber.pending == 0
    assert len(hub) == 0
