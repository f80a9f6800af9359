"""Two `python -m chat` processes sharing PostgreSQL and Redis, with clients on both."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.server import ChatServer
from tests.scaleout.clients import Collector, assert_exactly_once
from tests.scaleout.conftest import NodeFactory
from tests.scaleout.harness import Load, eventually, readiness, ready_is, stored_ids
from tests.support.services import PrivateRedis

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.anyio]

SOCKET_POSTS_PER_CLIENT = 25
API_POSTS_PER_NODE = 20


def sender(message: dict[str, Any]) -> str:
    client_id: str = message["client_id"]
    return client_id.rsplit("-", 1)[0]


async def test_two_nodes_deliver_every_message_exactly_once(
    make_node: NodeFactory, redis_url: str, channel: str
) -> None:
    a = make_node("a", broadcast_url=redis_url)
    b = make_node("b", broadcast_url=redis_url)
    assert (await readiness(a))[1]["checks"] == {
        "database": True,
        "schema": True,
        "broadcast": True,
    }
    with redis.Redis.from_url(redis_url) as stranger:
        stranger.publish(channel, "not a message\n12")  # ignored, and nothing else is lost

    async with (
        Collector("a1", a.url) as a1,
        Collector("a2", a.url) as a2,
        Collector("b1", b.url) as b1,
        Collector("b2", b.url) as b2,
    ):
        clients = [a1, a2, b1, b2]
        origin = {"a1": "a", "a2": "a", "api-a": "a", "b1": "b", "b2": "b", "api-b": "b"}

        async def socket_posts(client: Collector) -> None:
            for n in range(SOCKET_POSTS_PER_CLIENT):
                await client.send(f"{client.name} says {n}", client_id=f"{client.name}-{n}")

        async def api_posts(node: ChatServer, name: str) -> None:
            async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
                for n in range(API_POSTS_PER_NODE):
                    payload = {"body": f"{name} {n}", "client_id": f"{name}-{n}"}
                    response = await http.post("/api/messages", json=payload)
                    assert response.status_code == 201, response.text

        await asyncio.gather(
            *(socket_posts(client) for client in clients),
            api_posts(a, "api-a"),
            api_posts(b, "api-b"),
        )
        expected_client_ids = {
            f"{client.name}-{n}" for client in clients for n in range(SOCKET_POSTS_PER_CLIENT)
        } | {f"{name}-{n}" for name in ("api-a", "api-b") for n in range(API_POSTS_PER_NODE)}
        for client in clients:
            await client.wait_for_client_ids(expected_client_ids)
        stored = await stored_ids(b)
        assert len(stored) == len(expected_client_ids)
        await asyncio.sleep(0.3)  # room for a late duplicate to show up
        assert_exactly_once(clients, stored)

        # A node sends its own messages in id order, and Redis keeps each publisher's order;
        # only messages from different nodes may interleave out of id order (the page sorts).
        for client in clients:
            for node in ("a", "b"):
                ids = [m["id"] for m in client.messages if origin[sender(m)] == node]
                assert ids == sorted(ids), f"{client.name}: node {node} out of order"


async def test_catch_up_across_nodes(make_node: NodeFactory, redis_url: str) -> None:
    a = make_node("a", broadcast_url=redis_url)
    b = make_node("b", broadcast_url=redis_url)
    async with Collector("b1", b.url) as b1:
        first = await asyncio.to_thread(a.post_message, "before the client left")
        await b1.wait_for_ids([first["id"]])
    last_seen = b1.ids[-1]

    posted = [await asyncio.to_thread(a.post_message, f"while away {n}") for n in range(7)]
    page = await asyncio.to_thread(b.messages_page, after=last_seen, limit=50)
    assert [m["id"] for m in page["messages"]] == [m["id"] for m in posted]
    assert not page["has_newer"]
    assert page["newer_cursor"] == posted[-1]["id"]

    async with Collector("b1-again", b.url) as again:
        newest = await asyncio.to_thread(a.post_message, "after coming back")
        await again.wait_for_ids([newest["id"]])
        await asyncio.sleep(0.3)
        assert again.ids == [newest["id"]]  # live frames only: no replay of older messages


async def run_outage(
    make_node: NodeFactory,
    redis: PrivateRedis,
    *,
    break_broker: Callable[[], None],
    mend_broker: Callable[[], None],
) -> None:
    a = make_node("a", broadcast_url=redis.url)
    b = make_node("b", broadcast_url=redis.url)
    async with (
        Collector("a1", a.url) as a1,
        Collector("b1", b.url) as b1,
        Collector("b2", b.url) as b2,
    ):
        clients = [a1, b1, b2]
        load = Load([a, b], senders=[a1, b2])
        load.start()
        await asyncio.sleep(1.0)

        break_broker()
        load.broker_down = True
        for node in (a, b):
            await eventually(ready_is(node, 503), 8, f"{node.url} reports the broker down")
        _, body = await readiness(a)
        assert body["checks"] == {"database": True, "schema": True, "broadcast": False}
        await asyncio.sleep(0.5)  # posting goes on while the broker is away

        mend_broker()
        load.broker_down = False
        for node in (a, b):
            await eventually(ready_is(node, 200), 15, f"{node.url} reconnects to the broker")
        await asyncio.sleep(0.5)
        await load.stop()
        await load.settle()

        assert not load.failures, load.failures[:5]
        assert load.posted_while_down > 0
        stored = await stored_ids(a)
        for client in clients:
            await client.wait_for_ids(stored)
        await asyncio.sleep(0.5)  # room for a late duplicate to show up
        assert_exactly_once(clients, stored)
    logs = a.log_tail(400) + b.log_tail(400)
    assert "connection lost" in logs
    assert "reconnected after" in logs


@pytest.mark.slow
async def test_broker_killed_and_restarted_under_load(
    private_redis: PrivateRedis, make_node: NodeFactory
) -> None:
    await run_outage(
        make_node, private_redis, break_broker=private_redis.kill, mend_broker=private_redis.start
    )


@pytest.mark.slow
async def test_frozen_broker_is_noticed_and_healed(
    private_redis: PrivateRedis, make_node: NodeFactory
) -> None:
    # SIGSTOP leaves every TCP connection open and silent: only heartbeats can tell.
    await run_outage(
        make_node, private_redis, break_broker=private_redis.freeze, mend_broker=private_redis.thaw
    )


@pytest.mark.slow
async def test_a_node_that_lost_its_subscription_replays_what_it_missed(
    private_redis: PrivateRedis, make_node: NodeFactory
) -> None:
    # Only node b loses its subscription, and cannot resubscribe for a while, while node a keeps
    # publishing to Redis: b's clients can get those messages from the database replay alone.
    a = make_node("a", broadcast_url=private_redis.url)
    b = make_node("b", broadcast_url=private_redis.url)
    admin = redis.Redis.from_url(private_redis.url, socket_timeout=5)
    async with Collector("a1", a.url) as a1, Collector("b1", b.url) as b1:
        load = Load([a, b], senders=[a1, b1])
        load.start()
        await asyncio.sleep(0.5)

        listener = f"chat-listener-{b.pid}"
        connected = admin.client_list()
        [victim] = [client for client in connected if client["name"] == listener]
        admin.config_set("maxclients", len(connected) - 1)  # no new connections for now
        admin.client_kill_filter(_id=victim["id"])
        await eventually(ready_is(b, 503), 8, "node b notices it lost its subscription")
        assert (await readiness(a))[0] == 200
        await asyncio.sleep(1.0)  # a publishes; b hears nothing

        admin.config_set("maxclients", 10_000)
        await eventually(ready_is(b, 200), 15, "node b resubscribes")
        await asyncio.sleep(0.3)
        await load.stop()
        await load.settle()

        stored = await stored_ids(a)
        for client in (a1, b1):
            await client.wait_for_ids(stored)
        await asyncio.sleep(0.5)
        assert_exactly_once([a1, b1], stored)
    admin.close()
    replays = re.findall(r"replayed (\d+) missed", b.log_tail(400))
    assert replays and int(replays[-1]) > 0, b.log_tail(40)
