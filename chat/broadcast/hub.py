"""The local hub: every open socket on this process subscribes with a bounded queue.

Delivery never awaits a client. A frame is appended to each subscriber's queue without waiting;
a subscriber whose queue is full is evicted (its connection is then closed), so one slow reader
never delays anybody else and never makes the server buffer without bound. Each frame is wrapped
once per delivery and the same object is queued for every subscriber. A published batch goes
to one subscriber after another, each getting the whole batch in one write: the first sockets
are written while the hub is still walking the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence

from chat.broadcast.base import BroadcastMetrics, Unmeasured
from chat.wire import SharedFrame

logger = logging.getLogger(__name__)


class Subscriber:
    """A bounded queue of frames for one connection, drained by that connection's sender."""

    __slots__ = (
        "_busy",
        "_frames",
        "_limit",
        "_metrics",
        "_waiter",
        "direct",
        "evicted",
        "flush",
        "identity",
        "on_close_request",
        "on_evicted",
    )

    def __init__(self, queue_size: int, metrics: BroadcastMetrics, identity: object = None) -> None:
        self._frames: deque[SharedFrame] = deque()
        self._limit = queue_size
        self._metrics = metrics
        self._waiter: asyncio.Future[None] | None = None
        self.evicted = False
        # Called once on eviction: the sender may be stuck writing to a reader that stopped,
        # so the connection must be told rather than find out from its queue.
        self.on_evicted: Callable[[], None] | None = None
        # Hands a frame to the connection at once if it can take it now, and writes what was
        # handed over (see chat.transport).
        self.direct: Callable[[SharedFrame], bool] | None = None
        self.flush: Callable[[], None] | None = None
        self._busy = False  # the sender holds a frame it has not finished sending
        # Who the connection speaks for (opaque here): what `Hub.close_matching` tests.
        self.identity = identity
        # Asks the connection to close with a code and reason (its credentials were revoked).
        self.on_close_request: Callable[[int, str], None] | None = None

    def offer(self, frame: SharedFrame | str) -> bool:
        """Queue a frame (written at once if the connection can take it now); on a full queue
        mark this subscriber evicted and return False."""
        shared = frame if isinstance(frame, SharedFrame) else SharedFrame(frame)
        return self.offer_all((shared,))

    def offer_all(self, frames: Sequence[SharedFrame]) -> bool:
        """Offer frames in order; what the connection took at once leaves in one write."""
        handed_over = False
        for frame in frames:
            if self.evicted:
                return False
            if self._hand_over(frame):
                handed_over = True
            elif len(self._frames) >= self._limit:
                self._evict()
            else:
                self._frames.append(frame)
                self._wake()
        if handed_over and self.flush is not None:
            self.flush()
        return not self.evicted

    def _hand_over(self, frame: SharedFrame) -> bool:
        # Nothing queued and nothing in flight: handing it over now keeps the order and saves
        # waking the sender.
        return (
            not self._frames and not self._busy and self.direct is not None and self.direct(frame)
        )

    def _evict(self) -> None:
        self.evicted = True
        self._frames.clear()
        # Counted here rather than in Hub.deliver: a subscriber's own frames (an error, a
        # rate-limit answer) can overflow its queue too.
        self._metrics.evicted()
        if self.on_evicted is not None:
            self.on_evicted()
        self._wake()

    async def next_frame(self) -> SharedFrame | None:
        """The next frame in order, or None once this subscriber has been evicted."""
        while not self._frames and not self.evicted:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.evicted:
            return None
        self._busy = True
        return self._frames.popleft()

    def sent(self) -> None:
        """The sender finished the frame `next_frame` gave it."""
        self._busy = False

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def pending(self) -> int:
        return len(self._frames)


class Hub:
    def __init__(self, queue_size: int, *, metrics: BroadcastMetrics | None = None) -> None:
        self._queue_size = queue_size
        self._metrics = metrics if metrics is not None else Unmeasured()
        self._subscribers: set[Subscriber] = set()

    def subscribe(self, identity: object = None) -> Subscriber:
        subscriber = Subscriber(self._queue_size, self._metrics, identity)
        self._subscribers.add(subscriber)
        return subscriber

    def identities(self) -> list[object]:
        return [subscriber.identity for subscriber in self._subscribers]

    def close_matching(self, matches: Callable[[object], bool], code: int, reason: str) -> int:
        """Stop delivering to every connection whose identity matches, at once, and ask each
        to close; how many there were."""
        matched = [sub for sub in self._subscribers if matches(sub.identity)]
        for subscriber in matched:
            self._subscribers.discard(subscriber)
            if subscriber.on_close_request is not None:
                subscriber.on_close_request(code, reason)
        return len(matched)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def deliver(self, texts: Sequence[str]) -> None:
        """Hand one published batch of frames, in order, to every subscriber."""
        frames = [SharedFrame(text) for text in texts]
        evicted = [sub for sub in self._subscribers if not sub.offer_all(frames)]
        for subscriber in evicted:
            self._subscribers.discard(subscriber)
        # One count per delivery, not per recipient: the subscribers left took the whole batch.
        self._metrics.delivered(len(frames) * len(self._subscribers))
        if evicted:
            logger.warning("evicted %d slow subscriber(s): send queue full", len(evicted))

    def __len__(self) -> int:
        return len(self._subscribers)
