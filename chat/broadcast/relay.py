"""The relay: cross-process fan-out that heals after broker outages.

A `Transport` (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) only moves envelopes. The `Relay` around
it gives the hub its guarantees:

* a node hands its own messages to its hub directly, then queues them for the broker; the echo
  that comes back is dropped, so local clients never depend on the broker;
* every other node's listener hands each message to its hub once: a bounded window of recently
  relayed ids drops duplicates (live echoes, replays, retried publishes);
* the listener is supervised: a dead connection (an error, or silence past the transport's
  heartbeat deadline) is logged, closed and reopened with capped exponential backoff, and after
  every (re)subscribe the node replays from the database what it may have missed;
* publishing never fails a post: while the broker is down messages wait in a bounded outbox and
  go out after reconnecting.

Why the replay starts below the highest id seen: ids are handed out when a transaction inserts,
not when it commits, so across nodes id 10 can commit (and be published) after id 11. The replay
therefore starts at the highest id relayed at least `grace` seconds before the connection was
last known healthy; every lower id was committed and published by then, hence seen. Messages
already relayed above that floor are skipped by the id window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from chat.broadcast.base import (
    SIGNAL_MARK,
    BroadcastBackend,
    BroadcastMetrics,
    Envelope,
    FrameHandler,
    MessageSource,
    SignalHandler,
    Unmeasured,
)
from chat.events.records import Effect

logger = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker connection failed or went silent; the relay reconnects."""


@dataclass(frozen=True, slots=True)
class Received:
    """A change announced by the broker; `frame` is None when only its seq fit the payload.

    A signal (chat.broadcast.base.SIGNAL_MARK lines) comes as seq 0 with the signal in `signal`.
    """

    seq: int
    frame: str | None
    topic: str = ""
    effect: Effect | None = None
    signal: str | None = None
    purge: int | None = None

    @property
    def id(self) -> int:
        return self.seq


@dataclass(frozen=True, slots=True)
class Liveness:
    """How a transport tells a live broker connection from a dead one."""

    heartbeat: float = 1.0  # ping a connection that has been quiet this long
    dead_after: float = 3.0  # declare it dead after this long without an answer
    timeout: float = 3.0  # connect and socket timeout


DEFAULT_LIVENESS = Liveness()


class Transport(ABC):
    """One node's connection to a broker. The relay supervises it and never shares it."""

    name: str = "broker"

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection and subscribe. Raises BrokerUnavailable."""

    @abstractmethod
    async def receive(self) -> Sequence[Received]:
        """Wait for the next announcements; an empty list is a heartbeat answer.

        Raises BrokerUnavailable when the connection fails or stays silent past its deadline.
        """

    @abstractmethod
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Send envelopes in order. Raises BrokerUnavailable."""

    @abstractmethod
    async def publish_line(self, line: str) -> None:
        """Send one raw line (a signal). Raises BrokerUnavailable."""

    @abstractmethod
    async def close(self) -> None:
        """Drop the subscription; safe to call at any time. Publishing may go on."""

    async def shutdown(self) -> None:
        """Release every connection, the publisher's too; the node is stopping."""
        await self.close()


@dataclass(frozen=True, slots=True)
class RelayTiming:
    connect_timeout: float = 3.0
    publish_timeout: float = 2.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    # Longest time from an id being handed out to its publish reaching the broker.
    grace: float = 5.0
    # How long relayed ids are remembered for de-duplication (and the cap on how many).
    retain: float = 120.0
    max_remembered: int = 100_000
    # Messages kept for the broker while it is unreachable.
    max_outbox: int = 10_000
    replay_page: int = 500
    # How long start() waits for the first connection before serving without it.
    start_wait: float = 3.0


class Relay(BroadcastBackend):
    def __init__(
        self,
        transport: Transport,
        timing: RelayTiming | None = None,
        *,
        metrics: BroadcastMetrics | None = None,
    ) -> None:
        self._transport = transport
        self._timing = timing or RelayTiming()
        self._metrics = metrics if metrics is not None else Unmeasured()
        self._on_frame: FrameHandler | None = None
        self._on_signal: SignalHandler | None = None
        self._source: MessageSource | None = None
        # id -> monotonic time it was handed to the hub; insertion order is time order.
        self._relayed: dict[int, float] = {}
        self._floor = 0  # replay never starts below this (ids at start, forgotten ids)
        self._healthy_at = 0.0
        self._connected = asyncio.Event()
        self._outbox: deque[Envelope] = deque()
        self._outbox_filled = asyncio.Event()
        self._outbox_sent = asyncio.Event()  # set while nothing waits for the broker
        self._outbox_sent.set()
        self._tasks: list[asyncio.Task[None]] = []
        self.replayed = 0  # messages delivered by replays, for logs and tests

    async def start(
        self,
        on_frame: FrameHandler,
        *,
        on_signal: SignalHandler | None = None,
        source: MessageSource | None = None,
    ) -> None:
        if source is None:
            raise ValueError(f"the {self._transport.name} relay needs a message source to replay")
        self._on_frame = on_frame
        self._on_signal = on_signal
        self._source = source
        self._floor = await source.latest_id()
        self._healthy_at = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"{self._transport.name}-listener"),
            asyncio.create_task(self._publish_loop(), name=f"{self._transport.name}-publisher"),
        ]
        try:
            await asyncio.wait_for(self._connected.wait(), self._timing.start_wait)
        except TimeoutError:
            logger.error(
                "%s unreachable at start; serving this node alone until it answers",
                self._transport.name,
            )

    async def stop(self) -> None:
        if self._connected.is_set():
            # The writer has drained into the outbox by now: give it a moment to go out, or
            # nodes that stay connected (and so never replay) would not show those messages.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_sent.wait(), self._timing.publish_timeout)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            await self._transport.shutdown()
        if self._outbox:
            logger.warning(
                "stopping with %d message(s) not sent to %s; other nodes' clients get them "
                "when they next catch up",
                len(self._outbox),
                self._transport.name,
            )
        self._connected.clear()
        self._metrics.broker_up(False)
        self._on_frame = None
        self._on_signal = None

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self._on_frame is None:
            raise RuntimeError(f"the {self._transport.name} relay is not started")
        if not envelopes:
            return
        self._deliver(envelopes)
        self._outbox.extend(envelopes)
        self._outbox_sent.clear()
        overflow = len(self._outbox) - self._timing.max_outbox
        if overflow > 0:
            for _ in range(overflow):
                self._outbox.popleft()
            logger.error(
                "%s outbox full: %d message(s) not published; nodes that stayed connected "
                "show them only after their clients reconnect",
                self._transport.name,
                overflow,
            )
        self._outbox_filled.set()

    async def publish_signal(self, signal: str) -> None:
        if self._on_signal is not None:
            self._on_signal(signal)  # this node at once; the echo from the broker is harmless
        if "\n" in signal:
            raise ValueError("a signal is one line")
        try:
            async with asyncio.timeout(self._timing.publish_timeout):
                await self._transport.publish_line(SIGNAL_MARK + signal)
        except (BrokerUnavailable, OSError, TimeoutError) as error:
            # Other nodes find out at their next credential re-check instead.
            logger.warning(
                "could not publish a signal to %s (%s); other nodes act on their next re-check",
                self._transport.name,
                describe(error),
            )

    @property
    def ready(self) -> bool:
        return self._connected.is_set()

    # ---- delivery and de-duplication ----

    def _deliver(self, envelopes: Iterable[Envelope]) -> int:
        """Hand the hub the changes not relayed already; how many that was."""
        assert self._on_frame is not None
        now = time.monotonic()
        fresh = []
        for envelope in envelopes:
            if envelope.seq not in self._relayed:
                self._relayed[envelope.seq] = now
                fresh.append(envelope)
        if fresh:
            self._forget_old(now)
            self._on_frame(fresh)
        return len(fresh)

    def _forget_old(self, now: float) -> None:
        # Forget only while connected: during an outage the entries are what the replay needs.
        limit = self._timing.max_remembered
        horizon = now - self._timing.retain
        while self._relayed:
            oldest_id, at = next(iter(self._relayed.items()))
            if len(self._relayed) <= limit and (at > horizon or not self._connected.is_set()):
                return
            del self._relayed[oldest_id]
            self._floor = max(self._floor, oldest_id)

    def _replay_floor(self) -> int:
        """The highest id below which every message was surely relayed already."""
        cutoff = self._healthy_at - self._timing.grace
        floor = self._floor
        for message_id, at in self._relayed.items():
            if at > cutoff:
                break
            floor = max(floor, message_id)
        return floor

    async def _accept(self, batch: Sequence[Received]) -> None:
        envelopes = []
        for item in batch:
            if item.signal is not None:
                if self._on_signal is not None:
                    self._on_signal(item.signal)
                continue
            if item.id in self._relayed:
                continue
            frame = item.frame
            if frame is None:
                frame = await self._fetch(item.id)
                if frame is None:
                    continue
            envelopes.append(Envelope(item.seq, item.topic, frame, item.effect, item.purge))
        self._deliver(envelopes)

    async def _fetch(self, seq: int) -> str | None:
        assert self._source is not None
        envelopes = await self._source.envelopes_after(seq - 1, 1)
        if envelopes and envelopes[0].seq == seq:
            return envelopes[0].frame
        logger.error("announced change %d is not in the database", seq)
        return None

    async def _replay(self) -> int:
        assert self._source is not None
        after = self._replay_floor()
        delivered = 0
        while True:
            page = await self._source.envelopes_after(after, self._timing.replay_page)
            delivered += self._deliver(page)
            if len(page) < self._timing.replay_page:
                return delivered
            after = page[-1].id

    # ---- supervised tasks ----

    async def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                async with asyncio.timeout(self._timing.connect_timeout):
                    await self._transport.connect()
                # Subscribed first, then replay: whatever is published from now on arrives live.
                replayed = await self._replay()
                self.replayed += replayed
                self._metrics.replayed(replayed)
                self._healthy_at = time.monotonic()
                self._connected.set()
                self._metrics.broker_up(True)
                if failures:
                    self._metrics.broker_reconnected()
                    logger.warning(
                        "%s reconnected after %d attempt(s); replayed %d missed message(s)",
                        self._transport.name,
                        failures,
                        replayed,
                    )
                failures = 0
                while True:
                    batch = await self._transport.receive()
                    self._healthy_at = time.monotonic()
                    await self._accept(batch)
            except (BrokerUnavailable, OSError, TimeoutError, SQLAlchemyError) as error:
                failures += 1
                self._lost(error, failures)
            except Exception:
                failures += 1
                logger.exception("%s listener failed; reconnecting", self._transport.name)
                self._connected.clear()
                self._metrics.broker_up(False)
            await self._transport.close()
            await asyncio.sleep(self._backoff(failures))

    def _lost(self, error: Exception, failures: int) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._metrics.broker_up(False)
        if was_connected:
            logger.error(
                "%s connection lost (%s); reconnecting, then replaying from the database",
                self._transport.name,
                describe(error),
            )
        elif failures == 1 or failures % 10 == 0:
            logger.warning(
                "%s unreachable (attempt %d): %s",
                self._transport.name,
                failures,
                describe(error),
            )

    def _backoff(self, failures: int) -> float:
        timing = self._timing
        delay = min(timing.backoff_max, timing.backoff_initial * 2.0 ** (failures - 1))
        return delay * random.uniform(0.5, 1.0)  # jitter: nodes do not reconnect in lockstep

    async def _publish_loop(self) -> None:
        failures = 0
        while True:
            await self._outbox_filled.wait()
            await self._connected.wait()
            if not self._outbox:
                self._outbox_filled.clear()
                continue
            batch = [self._outbox.popleft() for _ in range(min(256, len(self._outbox)))]
            try:
                async with asyncio.timeout(self._timing.publish_timeout):
                    await self._transport.publish(batch)
            except (BrokerUnavailable, OSError, TimeoutError) as error:
                # Put them back in front; a publish that did arrive is de-duplicated downstream.
                self._outbox.extendleft(reversed(batch))
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    logger.warning(
                        "publishing %d message(s) to %s failed (%s); will retry",
                        len(batch),
                        self._transport.name,
                        describe(error),
                    )
                await asyncio.sleep(self._backoff(failures))
            except Exception:
                self._outbox.extendleft(reversed(batch))
                failures += 1
                logger.exception("publishing to %s failed unexpectedly", self._transport.name)
                await asyncio.sleep(self._backoff(failures))
            else:
                failures = 0
                if not self._outbox:
                    self._outbox_sent.set()


def describe(error: BaseException) -> str:
    """An error for a log line: its message, or its type when it has none (timeouts)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
