"""The interface every fan-out backend implements (in-process memory, Redis, PostgreSQL)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from chat.events.records import Effect

# Called on every node, from the event loop, with frames to deliver in order (one published
# batch where the backend has it); never awaits a client.
FrameHandler = Callable[[Sequence["Envelope"]], None]
# Called on every node with a signal: a small control message (credentials revoked) that is
# delivered at most once, live only (never replayed: nodes re-check on a timer instead).
SignalHandler = Callable[[str], None]
# On the broker a signal is one line starting with this (message lines start with their id).
SIGNAL_MARK = "!"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A committed change on its way to the hubs: its place in the change log (`seq`), the
    topic whose subscribers get it, its frame (serialized once, for everyone), and what it does
    to subscriptions (membership changes)."""

    seq: int
    topic: str
    frame: str
    effect: Effect | None = None
    # A message every node must forget its renderings of (edited or deleted).
    purge: int | None = None

    @property
    def id(self) -> int:
        return self.seq


class BroadcastMetrics(Protocol):
    """What the hub and the backends report (chat.metrics records it)."""

    def delivered(self, count: int) -> None:
        """`count` message frames handed to local sockets by one delivery of the hub."""

    def evicted(self) -> None:
        """A subscriber fell a whole send queue behind and was evicted."""

    def broker_up(self, up: bool) -> None:
        """Whether frames published now reach the other nodes (`ready` changed)."""

    def broker_reconnected(self) -> None:
        """The relay subscribed again after its broker connection failed."""

    def replayed(self, messages: int) -> None:
        """A replay from the database finished, delivering `messages` missed messages."""


class Unmeasured:
    """BroadcastMetrics that records nothing: for a hub or backend nobody measures."""

    def delivered(self, count: int) -> None:
        pass

    def evicted(self) -> None:
        pass

    def broker_up(self, up: bool) -> None:
        pass

    def broker_reconnected(self) -> None:
        pass

    def replayed(self, messages: int) -> None:
        pass


class MessageSource(Protocol):
    """Where a node re-reads committed messages after it lost its broker (the database)."""

    async def latest_id(self) -> int:
        """The highest stored id, 0 when there is none."""
        ...

    async def envelopes_after(self, after: int, limit: int) -> Sequence[Envelope]:
        """Up to `limit` stored messages with an id above `after`, in id order."""
        ...


class BroadcastBackend(ABC):
    """Carries stored messages from the node that committed them to every node's hub."""

    @abstractmethod
    async def start(
        self,
        on_frame: FrameHandler,
        *,
        on_signal: SignalHandler | None = None,
        source: MessageSource | None = None,
    ) -> None:
        """Begin handing every published frame to `on_frame`, once per message, and every
        signal to `on_signal`.

        Backends that cross processes use `source` to replay what they missed while their
        broker was unreachable.
        """

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening and release connections; safe to call twice."""

    @abstractmethod
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish committed messages in commit order.

        This node's hub has them before this returns (the hub never awaits a client): the
        delivery latency metric relies on it. Never fails because a broker is down: the
        messages are stored, so the backend delivers them later (after a replay) instead.
        Raises only when the backend is not started.
        """

    @abstractmethod
    async def publish_signal(self, signal: str) -> None:
        """Hand a one-line signal to this node's `on_signal` now and to the other nodes' as
        soon as the broker takes it; best effort (never raises for a broker that is down)."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """Whether frames published now reach the other nodes."""
