"""The local hub: every open socket on this process subscribes with a bounded queue.

Delivery never awaits a client. A frame is put on each subscriber's queue without waiting; a
subscriber whose queue is full is evicted (its connection is then closed), so one slow reader
never delays anybody else and never makes the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)


class Subscriber:
    def __init__(self, queue_size: int) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.evicted = asyncio.Event()

    def offer(self, frame: str) -> bool:
        """Queue a frame; on a full queue mark this subscriber evicted and return False."""
        if self.evicted.is_set():
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.evicted.set()
            return False
        return True

    async def next_frame(self) -> str:
        return await self._queue.get()

    @property
    def pending(self) -> int:
        return self._queue.qsize()


class Hub:
    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(self._queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def deliver(self, frame: str) -> None:
        evicted = [sub for sub in self._subscribers if not sub.offer(frame)]
        for subscriber in evicted:
            self._subscribers.discard(subscriber)
        if evicted:
            logger.warning("evicted %d slow subscriber(s): send queue full", len(evicted))

    def __len__(self) -> int:
        return len(self._subscribers)
