"""Fan-out through PostgreSQL alone: LISTEN/NOTIFY between two `python -m chat` processes."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from chat.broadcast.base import Envelope
from chat.broadcast.postgres import PostgresTransport
from chat.broadcast.relay import Received
from tests.scaleout.clients import Collector, assert_exactly_once
from tests.scaleout.conftest import NodeFactory
from tests.scaleout.harness import Load, eventually, readiness, ready_is, stored_ids
from tests.support.postgres import execute, run_async

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

# 2000 four-byte characters: the frame (body plus its HTML) is far beyond NOTIFY's 8000 bytes.
LARGE_BODY = "\N{GRINNING FACE}" * 2000


def notify_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_two_nodes_share_messages_through_notify(make_node: NodeFactory, pg_url: str) -> None:
    a = make_node("a", broadcast_url=notify_url(pg_url))
    b = make_node("b", broadcast_url=notify_url(pg_url))
    assert (await readiness(b))[1]["checks"] == {
        "database": True,
        "schema": True,
        "broadcast": True,
    }
    async with Collector("a1", a.url) as a1, Collector("b1", b.url) as b1:
        sent = []
        for n in range(15):
            for client in (a1, b1):
                sent.append(f"{client.name}-{n}")
                await client.send(f"hello {n}", client_id=sent[-1])
        sent.append("large")
        await a1.send(LARGE_BODY, client_id="large")
        for client in (a1, b1):
            await client.wait_for_client_ids(sent)
        stored = await stored_ids(a)
        assert len(stored) == len(sent)
        await asyncio.sleep(0.3)
        assert_exactly_once([a1, b1], stored)
        [large] = [m for m in b1.messages if m["client_id"] == "large"]
        assert large["body"] == LARGE_BODY  # b read it from the database


@pytest.mark.slow
async def test_terminated_listener_reconnects_and_loses_nothing(
    make_node: NodeFactory, pg_url: str
) -> None:
    a = make_node("a", broadcast_url=notify_url(pg_url))
    b = make_node("b", broadcast_url=notify_url(pg_url))
    async with Collector("a1", a.url) as a1, Collector("b1", b.url) as b1:
        load = Load([a, b], senders=[a1, b1])
        load.start()
        for _ in range(3):
            await asyncio.sleep(0.5)
            terminate = (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE application_name = 'chat-listener-{b.pid}'"
            )
            await asyncio.to_thread(run_async, partial(execute, pg_url, terminate))
            await eventually(ready_is(b, 200), 10, "node b listens again")
        await asyncio.sleep(0.3)
        await load.stop()
        await load.settle()
        assert not load.failures, load.failures[:5]
        stored = await stored_ids(a)
        for client in (a1, b1):
            await client.wait_for_ids(stored)
        await asyncio.sleep(0.5)
        assert_exactly_once([a1, b1], stored)
    log = b.log_tail(400)
    assert "connection lost" in log
    assert "reconnected after" in log


async def test_signals_and_changes_published_at_once_all_arrive(pg_url: str, channel: str) -> None:
    # Presence, typing and the relay's publisher share one NOTIFY connection, from their own
    # tasks: none may fail because another is using it (asyncpg runs one query at a time).
    listener = PostgresTransport(notify_url(pg_url), channel=channel)
    publisher = PostgresTransport(notify_url(pg_url), channel=channel)
    await listener.connect()
    try:
        await publisher.publish_line("!warm")
        changes = [Envelope(n, "r:1", f'{{"n":{n}}}') for n in range(1, 31)]
        await asyncio.gather(
            *(publisher.publish_line(f"!s{n}") for n in range(30)),
            *(publisher.publish([change]) for change in changes),
        )
        got: list[Received] = []
        async with asyncio.timeout(10):
            while len(got) < 61:
                got += await listener.receive()
        assert sorted(r.signal for r in got if r.signal) == sorted(
            ["warm", *(f"s{n}" for n in range(30))]
        )
        assert sorted(r.seq for r in got if not r.signal) == list(range(1, 31))
    finally:
        await listener.shutdown()
        await publisher.shutdown()
