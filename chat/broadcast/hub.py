"""The local hub: every open socket on this process subscribes with a bounded queue, to topics.

A topic is a room (`r:<id>`) or a user (`u:<id>`); a published change reaches the subscribers
of its topic only, so a node does nothing for rooms none of its sockets is in. Membership
changes carry an effect that the hub applies in log order, on every node: a join subscribes the
user's sockets to the room before its frame is delivered, a leave unsubscribes them right after
(from the room's presence too), so a removed member's open sockets get nothing more from it.

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
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from chat.broadcast.base import BroadcastMetrics, Envelope, Unmeasured
from chat.events.records import PRESENCE_PREFIX, Effect, presence_topic, room_topic, user_topic
from chat.wire import SharedFrame

logger = logging.getLogger(__name__)

_Key = TypeVar("_Key", bound=Hashable)


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
        "topics",
        "user_id",
    )

    def __init__(
        self,
        queue_size: int,
        metrics: BroadcastMetrics,
        identity: object = None,
        user_id: int | None = None,
    ) -> None:
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
        self.user_id = user_id  # the signed-in user, whose membership effects apply here
        self.topics: set[str] = set()  # kept by the Hub

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
        self._by_topic: dict[str, set[Subscriber]] = {}
        self._by_user: dict[int, set[Subscriber]] = {}

    def subscribe(
        self, identity: object = None, *, user_id: int | None = None, topics: Iterable[str] = ()
    ) -> Subscriber:
        """A new subscriber, on its user's topic (if signed in) and the topics given."""
        subscriber = Subscriber(self._queue_size, self._metrics, identity, user_id)
        self._subscribers.add(subscriber)
        if user_id is not None:
            self._by_user.setdefault(user_id, set()).add(subscriber)
            self.add_topic(subscriber, user_topic(user_id))
        for topic in topics:
            self.add_topic(subscriber, topic)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        for topic in list(subscriber.topics):
            self.remove_topic(subscriber, topic)
        if subscriber.user_id is not None:
            _discard(self._by_user, subscriber.user_id, subscriber)

    def add_topic(self, subscriber: Subscriber, topic: str) -> None:
        if subscriber in self._subscribers:
            subscriber.topics.add(topic)
            self._by_topic.setdefault(topic, set()).add(subscriber)

    def remove_topic(self, subscriber: Subscriber, topic: str) -> None:
        subscriber.topics.discard(topic)
        _discard(self._by_topic, topic, subscriber)

    def wants(self, topic: str) -> bool:
        """Whether any socket here listens to `topic` (a node skips frames nobody wants)."""
        return topic in self._by_topic

    def watched_rooms(self) -> set[int]:
        """The rooms whose presence some socket here watches."""
        return {
            int(topic[len(PRESENCE_PREFIX) :])
            for topic in self._by_topic
            if isinstance(topic, str) and topic.startswith(PRESENCE_PREFIX)
        }

    def identities(self) -> list[object]:
        return [subscriber.identity for subscriber in self._subscribers]

    def subscribers(self) -> list[Subscriber]:
        return list(self._subscribers)

    def close_matching(self, matches: Callable[[object], bool], code: int, reason: str) -> int:
        """Stop delivering to every connection whose identity matches, at once, and ask each
        to close; how many there were."""
        matched = [sub for sub in self._subscribers if matches(sub.identity)]
        for subscriber in matched:
            self.unsubscribe(subscriber)
            if subscriber.on_close_request is not None:
                subscriber.on_close_request(code, reason)
        return len(matched)

    def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Hand one published batch, in order, to the subscribers of each change's topic.

        Each subscriber gets its frames of the batch in one offer (one write)."""
        if not envelopes:
            return
        first = envelopes[0]
        if all(e.topic == first.topic and e.effect is None for e in envelopes):
            # The common case: messages in one room. Frames are wrapped once for everyone, and
            # not at all for a room nobody here is in.
            recipients = self._by_topic.get(first.topic)
            if recipients:
                frames = [SharedFrame(envelope.frame) for envelope in envelopes]
                self._offer(dict.fromkeys(recipients, frames))
            return
        pending: dict[Subscriber, list[SharedFrame]] = {}
        for envelope in envelopes:
            effect = envelope.effect
            if effect is not None and effect.action == "join":
                self._apply(effect)
            recipients = self._by_topic.get(envelope.topic)
            if recipients:
                frame = SharedFrame(envelope.frame)
                for subscriber in recipients:
                    pending.setdefault(subscriber, []).append(frame)
            if effect is not None and effect.action == "leave":
                self._apply(effect)
        self._offer(pending)

    def deliver_ephemeral(self, topic: str, frame: str) -> int:
        """A frame outside the change log (typing, presence) to the subscribers of a topic;
        how many it was offered to."""
        recipients = self._by_topic.get(topic)
        if not recipients:
            return 0
        shared = [SharedFrame(frame)]
        self._offer(dict.fromkeys(recipients, shared))
        return len(recipients)

    def _apply(self, effect: Effect) -> None:
        topic = room_topic(effect.room_id)
        for subscriber in list(self._by_user.get(effect.user_id, ())):
            if effect.action == "join":
                self.add_topic(subscriber, topic)
            else:
                self.remove_topic(subscriber, topic)
                # Who of the room is online is the room's news too: a socket watching it
                # stops hearing it with the rest.
                self.remove_topic(subscriber, presence_topic(effect.room_id))

    def _offer(self, frames_for: dict[Subscriber, list[SharedFrame]]) -> None:
        delivered = 0
        evicted = []
        for subscriber, frames in frames_for.items():
            if subscriber.offer_all(frames):
                delivered += len(frames)
            else:
                evicted.append(subscriber)
        for subscriber in evicted:
            self.unsubscribe(subscriber)
        # One count per delivery, not per recipient.
        self._metrics.delivered(delivered)
        if evicted:
            logger.warning("evicted %d slow subscriber(s): send queue full", len(evicted))

    def __len__(self) -> int:
        return len(self._subscribers)


def _discard(index: dict[_Key, set[Subscriber]], key: _Key, subscriber: Subscriber) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(subscriber)
        if not members:
            del index[key]
