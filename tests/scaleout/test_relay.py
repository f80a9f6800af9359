"""The relay's bookkeeping, driven through an in-process broker that a test can cut.

The real brokers are exercised in the other modules of this directory; here the point is the
orderings that real servers produce only by chance: ids committed out of order across nodes,
publishes that fail, echoes of a node's own messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from chat.broadcast.base import Envelope
from chat.broadcast.relay import BrokerUnavailable, Received, Relay, RelayTiming, Transport
from chat.metrics import Metrics

pytestmark = pytest.mark.anyio

TOPIC = "r:1"
FAST = RelayTiming(backoff_initial=0.01, backoff_max=0.05, start_wait=2.0)


class Database:
    """Committed messages, as the relay's MessageSource sees them."""

    def __init__(self) -> None:
        self.rows: dict[int, str] = {}

    def commit(self, message_id: int) -> Envelope:
        self.rows[message_id] = f"frame {message_id}"
        return Envelope(message_id, TOPIC, self.rows[message_id])

    async def latest_id(self) -> int:
        return max(self.rows, default=0)

    async def envelopes_after(self, after: int, limit: int) -> list[Envelope]:
        ids = sorted(i for i in self.rows if i > after)[:limit]
        return [Envelope(i, TOPIC, self.rows[i]) for i in ids]


class Broker:
    """Pub/sub in one process: at-most-once, and `up = False` drops every subscription."""

    def __init__(self) -> None:
        self.up = True
        self.subscribers: list[asyncio.Queue[Sequence[Received] | None]] = []

    def cut(self) -> None:
        self.up = False
        for queue in self.subscribers:
            queue.put_nowait(None)
        self.subscribers.clear()


class BrokerTransport(Transport):
    name = "test broker"

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.queue: asyncio.Queue[Sequence[Received] | None] | None = None

    async def connect(self) -> None:
        if not self.broker.up:
            raise BrokerUnavailable("down")
        self.queue = asyncio.Queue()
        self.broker.subscribers.append(self.queue)

    async def receive(self) -> Sequence[Received]:
        assert self.queue is not None
        batch = await self.queue.get()
        if batch is None:
            raise BrokerUnavailable("cut")
        return batch

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not self.broker.up:
            raise BrokerUnavailable("down")
        for queue in self.broker.subscribers:
            queue.put_nowait([Received(e.seq, e.frame, topic=e.topic) for e in envelopes])

    async def publish_line(self, line: str) -> None:
        if not self.broker.up:
            raise BrokerUnavailable("down")
        for queue in self.broker.subscribers:
            queue.put_nowait([Received(0, None, signal=line.removeprefix("!"))])

    async def close(self) -> None:
        if self.queue in self.broker.subscribers:
            self.broker.subscribers.remove(self.queue)
        self.queue = None


class Node:
    def __init__(self, broker: Broker, database: Database) -> None:
        self.relay = Relay(BrokerTransport(broker), FAST)
        self.database = database
        self.frames: list[str] = []
        self.signals: list[str] = []

    async def start(self) -> None:
        await self.relay.start(
            lambda envelopes: self.frames.extend(e.frame for e in envelopes),
            on_signal=self.signals.append,
            source=self.database,
        )

    async def post(self, message_id: int) -> None:
        await self.relay.publish([self.database.commit(message_id)])

    def ids(self) -> list[int]:
        return [int(frame.split()[1]) for frame in self.frames]


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def test_replay_after_a_cut_recovers_an_id_that_committed_late() -> None:
    broker, database = Broker(), Database()
    a, b = Node(broker, database), Node(broker, database)
    await a.start()
    await b.start()
    try:
        for message_id in (1, 2, 3):
            await a.post(message_id)
        await a.post(5)  # id 4 was handed out on node b, whose commit is slow
        await until(lambda: b.ids() == [1, 2, 3, 5])

        broker.cut()
        await until(lambda: not b.relay.ready)
        database.commit(4)  # b commits 4 now; its publish is lost with the broker
        broker.up = True
        await until(lambda: b.relay.ready and a.relay.ready)
        await until(lambda: 4 in b.ids() and 4 in a.ids())
        await asyncio.sleep(0.1)
        # Replaying "after the highest id seen" (5) would have skipped 4 for ever.
        assert sorted(b.ids()) == [1, 2, 3, 4, 5] and len(b.ids()) == 5
        assert sorted(a.ids()) == [1, 2, 3, 4, 5] and len(a.ids()) == 5
    finally:
        await a.relay.stop()
        await b.relay.stop()


async def test_posting_while_the_broker_is_down_delivers_locally_then_everywhere() -> None:
    broker, database = Broker(), Database()
    a, b = Node(broker, database), Node(broker, database)
    await a.start()
    await b.start()
    try:
        await a.post(1)
        await until(lambda: b.ids() == [1])
        broker.cut()
        await until(lambda: not a.relay.ready)
        await a.post(2)  # does not raise: the message is stored
        assert a.ids() == [1, 2]  # a's own clients see it at once
        broker.up = True
        await until(lambda: b.ids() == [1, 2])
        await a.post(3)
        await until(lambda: b.ids() == [1, 2, 3])
        await asyncio.sleep(0.1)
        assert a.ids() == [1, 2, 3]  # the echoes of a's publishes were dropped
        assert b.ids() == [1, 2, 3]
    finally:
        await a.relay.stop()
        await b.relay.stop()


async def test_a_relay_starts_without_its_broker_and_joins_when_it_appears() -> None:
    broker, database = Broker(), Database()
    broker.up = False
    node = Node(broker, database)
    node.relay = Relay(BrokerTransport(broker), RelayTiming(start_wait=0.1, backoff_max=0.05))
    await node.start()
    try:
        assert not node.relay.ready
        broker.up = True
        await until(lambda: node.relay.ready)
    finally:
        await node.relay.stop()
    with pytest.raises(RuntimeError):
        await node.post(1)


async def test_signals_reach_every_node_live_and_are_never_replayed() -> None:
    broker, database = Broker(), Database()
    a, b = Node(broker, database), Node(broker, database)
    await a.start()
    await b.start()
    try:
        await a.relay.publish_signal('{"kind": "revoked", "user_id": 7}')
        assert a.signals == ['{"kind": "revoked", "user_id": 7}']  # this node at once
        await until(lambda: b.signals == ['{"kind": "revoked", "user_id": 7}'])
        assert b.ids() == []  # a signal is not a message

        broker.cut()
        await until(lambda: not a.relay.ready)
        await a.relay.publish_signal("while down")  # does not raise: best effort
        assert a.signals[-1] == "while down"
        broker.up = True
        await until(lambda: b.relay.ready and a.relay.ready)
        await a.post(1)
        await until(lambda: b.ids() == [1])
        assert "while down" not in b.signals  # re-checks cover it, replays do not
    finally:
        await a.relay.stop()
        await b.relay.stop()


async def test_the_relay_reports_broker_state_reconnects_and_replays() -> None:
    broker, database = Broker(), Database()
    metrics = Metrics()
    node = Node(broker, database)
    node.relay = Relay(BrokerTransport(broker), FAST, metrics=metrics)

    def read(name: str) -> float:
        return metrics.registry.get_sample_value(name) or 0.0

    assert read("chat_broker_up") == 0
    await node.start()
    try:
        assert read("chat_broker_up") == 1
        assert read("chat_relay_replays_total") == 1  # the replay after the first subscribe
        assert read("chat_relay_replayed_messages_total") == 0
        assert read("chat_broker_reconnects_total") == 0
        broker.cut()
        await until(lambda: not node.relay.ready)
        assert read("chat_broker_up") == 0
        database.commit(1)  # committed on another node while this one had no broker
        database.commit(2)
        broker.up = True
        await until(lambda: node.relay.ready)
        assert node.ids() == [1, 2]
        assert read("chat_broker_up") == 1
        assert read("chat_broker_reconnects_total") == 1
        assert read("chat_relay_replays_total") == 2
        assert read("chat_relay_replayed_messages_total") == 2
    finally:
        await node.relay.stop()
    assert read("chat_broker_up") == 0
