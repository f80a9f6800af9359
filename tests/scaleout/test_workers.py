"""`uvicorn --workers 2`: one port, two processes, one room (through Redis and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from tests.scaleout.clients import Collector, assert_exactly_once
from tests.scaleout.conftest import GENEROUS_LIMITS
from tests.scaleout.workers import Workers, run_workers

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.anyio]

MAX_CONNECTIONS = 40


@pytest.fixture
def workers(tmp_path: Path, pg_url: str, redis_url: str, channel: str) -> Iterator[Workers]:
    env = {
        "CHAT_DATABASE_URL": pg_url,
        "CHAT_BROADCAST_URL": redis_url,
        "CHAT_BROADCAST_CHANNEL": channel,
        **GENEROUS_LIMITS,
    }
    with run_workers(tmp_path, env) as server:
        yield server


async def test_two_workers_serve_the_page_and_share_one_room(workers: Workers) -> None:
    async with httpx.AsyncClient(base_url=workers.url, timeout=5) as http:
        for _ in range(4):
            page = await http.get("/")
            assert page.status_code == 200 and "js/main.js" in page.text
            assert (await http.get("/static/js/main.js")).status_code == 200
            assert (await http.get("/readyz")).json()["checks"]["broadcast"] is True

    async with AsyncExitStack() as stack:
        # Open sockets until both workers hold at least one; the kernel picks the worker.
        by_worker: dict[int, list[Collector]] = {}
        for n in range(MAX_CONNECTIONS):
            client = await stack.enter_async_context(Collector(f"c{n}", workers.url))
            pid = await asyncio.to_thread(workers.worker_serving, client.local_port)
            assert pid is not None, "no worker holds this connection"
            by_worker.setdefault(pid, []).append(client)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, f"every connection went to one worker: {by_worker.keys()}"
        clients = [client for group in by_worker.values() for client in group]
        senders = [group[0] for group in by_worker.values()]

        sent = []
        for n in range(10):
            for sender in senders:
                sent.append(f"{sender.name}-{n}")
                await sender.send(f"from {sender.name}", client_id=sent[-1])
        for client in clients:
            await client.wait_for_client_ids(sent)
        stored = await asyncio.to_thread(workers.stored_ids)
        assert len(stored) == len(sent)
        await asyncio.sleep(0.3)
        assert_exactly_once(clients, stored)
