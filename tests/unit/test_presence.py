"""Presence without a server: online, away and offline from a node's sockets, changes between
nodes through one shared (in-memory) broker, and nodes that fall silent. Time is a fake clock;
the rounds the background task would run are called directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence

import pytest

from chat.broadcast.hub import Hub, Subscriber
from chat.broadcast.memory import MemoryBackend
from chat.events.records import presence_topic
from chat.realtime.presence import Presence

pytestmark = pytest.mark.anyio

AWAY_AFTER = 120.0
DEAD_AFTER = 20.0
ROOM = 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def members_in(user_ids: Sequence[int], room_ids: Collection[int]) -> set[tuple[int, int]]:
    """Everyone is in ROOM, and only there."""
    return {(ROOM, user_id) for user_id in user_ids if ROOM in room_ids}


class Cluster:
    """Nodes whose signals all go through one broker, as Redis or NOTIFY carry them."""

    def __init__(self, count: int) -> None:
        self.clock = Clock()
        self.down = False
        self.hubs = [Hub(queue_size=100) for _ in range(count)]
        self.nodes = [
            Presence(
                hub=hub,
                backend=MemoryBackend(),
                members_in=members_in,
                away_after=AWAY_AFTER,
                dead_after=DEAD_AFTER,
                clock=self.clock,
            )
            for hub in self.hubs
        ]

    async def start(self) -> Cluster:
        for node, hub in zip(self.nodes, self.hubs, strict=True):
            await node._backend.start(hub.deliver, on_signal=self._broker)
        return self

    def _broker(self, signal: str) -> None:
        if self.down:
            return  # at most once: what a broker outage drops is gone
        for node in self.nodes:
            node.on_signal(signal)

    async def flush(self) -> None:
        """One round on every node, and the signals it sent handled everywhere."""
        for node in self.nodes:
            await node._flush(self.clock.now)
            await settle()

    async def beat(self) -> None:
        """Every node's heartbeat, as its background task sends one every few seconds."""
        for node in self.nodes:
            await node._beat()
            await settle()

    async def online_on_first(self, *users: int) -> Subscriber:
        """These users get a socket on the first node; what a watcher on the second node sees."""
        watcher = self.watcher(1)
        for user in users:
            self.nodes[0].opened(user)
        await self.flush()
        return watcher

    def watcher(self, node: int) -> Subscriber:
        return self.hubs[node].subscribe(user_id=99, topics=[presence_topic(ROOM)])


@pytest.fixture
async def one() -> Cluster:
    return await Cluster(1).start()


@pytest.fixture
async def two() -> Cluster:
    return await Cluster(2).start()


async def settle() -> None:
    # Signals are handled in tasks (a sync asks for a snapshot, which is another signal...).
    for _ in range(20):
        await asyncio.sleep(0)


def frames(subscriber: Subscriber) -> list[tuple[int, str]]:
    seen = []
    while subscriber.pending:
        frame = json.loads(subscriber._frames.popleft().text)
        if "users" in frame:  # several changes at once
            seen.extend((int(user), status) for user, status in frame["users"].items())
        else:
            seen.append((frame["user"], frame["status"]))
    return seen


async def test_online_while_a_socket_is_open_offline_when_the_last_one_closes(one: Cluster) -> None:
    cluster = one
    [node] = cluster.nodes
    watcher = cluster.watcher(0)
    node.opened(7)
    node.opened(7)
    assert node.status(7) == "online"
    await cluster.flush()
    node.closed(7, hidden=False)
    await cluster.flush()
    assert node.status(7) == "online"
    node.closed(7, hidden=False)
    await cluster.flush()
    assert node.status(7) == "offline"
    assert frames(watcher) == [(7, "online"), (7, "offline")]  # changes, each once


async def test_away_only_once_every_tab_has_been_hidden_for_a_while(one: Cluster) -> None:
    cluster = one
    [node] = cluster.nodes
    node.opened(7)
    node.opened(7)
    node.visibility(7, was_hidden=False, hidden=True)
    cluster.clock.now += AWAY_AFTER * 2
    assert node.status(7) == "online", "one tab is still visible"
    node.visibility(7, was_hidden=False, hidden=True)
    cluster.clock.now += AWAY_AFTER - 1
    assert node.status(7) == "online", "hidden, but not for long yet"
    cluster.clock.now += 1
    assert node.status(7) == "away"
    node.visibility(7, was_hidden=True, hidden=False)
    assert node.status(7) == "online"


async def test_the_away_timer_reaches_other_nodes_without_any_event(two: Cluster) -> None:
    cluster = two
    a, b = cluster.nodes
    watcher = cluster.watcher(1)
    a.opened(7)
    a.visibility(7, was_hidden=False, hidden=True)
    await cluster.flush()
    cluster.clock.now += AWAY_AFTER
    await cluster.flush()  # the round itself notices the timer ran out
    assert b.status(7) == "away"
    assert frames(watcher) == [(7, "online"), (7, "away")]


async def test_closing_the_last_visible_tab_starts_the_away_timer_for_the_hidden_ones(
    one: Cluster,
) -> None:
    cluster = one
    [node] = cluster.nodes
    node.opened(7)
    node.opened(7)
    node.visibility(7, was_hidden=False, hidden=True)
    node.closed(7, hidden=False)  # the visible tab goes; only the hidden one is left
    cluster.clock.now += AWAY_AFTER
    assert node.status(7) == "away"


async def test_a_user_is_the_best_of_what_the_nodes_say(two: Cluster) -> None:
    cluster = two
    a, b = cluster.nodes
    watcher = cluster.watcher(1)
    a.opened(7)
    b.opened(7)
    b.visibility(7, was_hidden=False, hidden=True)
    cluster.clock.now += AWAY_AFTER
    await cluster.flush()
    assert a.status(7) == b.status(7) == "online"
    a.closed(7, hidden=False)
    await cluster.flush()
    assert a.status(7) == b.status(7) == "away"
    assert frames(watcher) == [(7, "online"), (7, "away")]


async def test_a_node_that_falls_silent_takes_its_users_offline_after_dead_after(
    two: Cluster,
) -> None:
    cluster = two
    b = cluster.nodes[1]
    watcher = await cluster.online_on_first(7)
    assert b.status(7) == "online"
    # A heartbeat keeps a quiet node alive...
    cluster.clock.now += DEAD_AFTER - 1
    await cluster.beat()
    cluster.clock.now += DEAD_AFTER - 1
    await b._bury_dead_nodes(cluster.clock.now)
    assert b.status(7) == "online"
    # ...and silence past dead_after is death (a SIGKILL says nothing).
    cluster.clock.now += 2
    await b._bury_dead_nodes(cluster.clock.now)
    assert b.status(7) == "offline"
    assert frames(watcher) == [(7, "online"), (7, "offline")]


async def test_a_node_that_joins_late_learns_the_others_state_from_one_snapshot(
    two: Cluster,
) -> None:
    cluster = two
    a, b = cluster.nodes
    a.opened(7)
    a.opened(8)
    await a._flush(cluster.clock.now)  # b does not hear it (it was not listening yet)
    b._nodes.clear()
    b.opened(9)
    await cluster.flush()  # b's change is news to a, which asks b... and b asks a
    assert b.statuses([7, 8, 9]) == {7: "online", 8: "online", 9: "online"}
    assert a.statuses([7, 8, 9]) == {7: "online", 8: "online", 9: "online"}


async def test_changes_lost_in_a_short_broker_outage_are_repaired_by_the_next_beat(
    two: Cluster,
) -> None:
    cluster = two
    a, b = cluster.nodes
    watcher = await cluster.online_on_first(7, 8)
    cluster.down = True  # shorter than dead_after: nobody is buried
    a.closed(7, hidden=False)
    await cluster.flush()
    cluster.down = False
    assert b.status(7) == "online"  # b cannot know yet
    await cluster.beat()  # a's heartbeat says what b missed; b asks for a snapshot
    assert b.statuses([7, 8]) == {7: "offline", 8: "online"}
    seen = frames(watcher)
    assert sorted(seen[:2]) == [(7, "online"), (8, "online")] and seen[2:] == [(7, "offline")]


class SlowBroker(MemoryBackend):
    """A broker that takes a moment to accept a signal, as Redis and NOTIFY do."""

    async def publish_signal(self, signal: str) -> None:
        await asyncio.sleep(0)
        await super().publish_signal(signal)


async def test_a_signal_handled_later_never_undoes_a_newer_one() -> None:
    hub = Hub(queue_size=10)
    node = Presence(hub=hub, backend=SlowBroker(), members_in=members_in, clock=Clock())
    await node._backend.start(hub.deliver)

    def change(n: int, status: str) -> str:
        users = {"7": status}
        return json.dumps(
            {"kind": "presence", "op": "changes", "node": "a", "n": n, "users": users}
        )

    # The first signal from an unknown node makes its handler ask for a snapshot (an await)
    # while the next signal's handler runs.
    node.on_signal(change(1, "online"))
    node.on_signal(change(2, "offline"))
    await settle()
    assert node.status(7) == "offline"
