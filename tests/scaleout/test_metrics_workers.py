"""`uvicorn --workers 2` with PROMETHEUS_MULTIPROC_DIR: whichever worker a scrape reaches, it
reports the sums over both, and a stopped worker's live gauges leave the sums."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.scaleout.clients import Collector
from tests.scaleout.conftest import GENEROUS_LIMITS
from tests.scaleout.workers import Workers, run_workers
from tests.support.metrics import Scrape, scrape

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.anyio]

TOKEN = "workers-token"
MAX_CONNECTIONS = 40
SCRAPES = 10  # fresh connections; the kernel hands them to either worker


async def open_on_both_workers(
    stack: AsyncExitStack, workers: Workers
) -> dict[int, list[Collector]]:
    """Open sockets until each worker holds at least one; the kernel picks the worker."""
    by_worker: dict[int, list[Collector]] = {}
    for n in range(MAX_CONNECTIONS):
        client = await stack.enter_async_context(Collector(f"c{n}", workers.url))
        pid = await asyncio.to_thread(workers.worker_serving, client.local_port)
        assert pid is not None, "no worker holds this connection"
        by_worker.setdefault(pid, []).append(client)
        if len(by_worker) == 2 and n >= 3:
            return by_worker
    raise AssertionError(f"every connection went to one worker: {list(by_worker)}")


async def test_a_scrape_reports_the_sum_over_every_worker(
    tmp_path: Path, pg_url: str, redis_url: str, channel: str
) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()  # empty at start, as README "Metrics" asks
    env = {
        "CHAT_DATABASE_URL": pg_url,
        "CHAT_BROADCAST_URL": redis_url,
        "CHAT_BROADCAST_CHANNEL": channel,
        "CHAT_METRICS": "true",
        "CHAT_METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **GENEROUS_LIMITS,
    }
    with run_workers(tmp_path, env) as workers:
        async with AsyncExitStack() as stack:
            by_worker = await open_on_both_workers(stack, workers)
            pids = set(by_worker)
            clients = [client for group in by_worker.values() for client in group]
            # Different counts per worker: a scrape that saw one worker alone cannot add up.
            sent: list[str] = []
            for count, group in zip((3, 4), by_worker.values(), strict=True):
                for n in range(count):
                    sent.append(f"{group[0].name}-{n}")
                    await group[0].send("hello", client_id=sent[-1])
                    for client in clients:  # one at a time: one message, one batch
                        await client.wait_for_client_ids(sent)
            for client in clients:
                assert client.client_ids() == set(sent)

            scrapes = [
                await asyncio.to_thread(scrape, workers.url, token=TOKEN) for _ in range(SCRAPES)
            ]
        for scraped in scrapes:
            assert_sums(scraped, messages=len(sent), sockets=len(clients))

    # SIGTERM: each worker marked itself dead, so the live gauges' files are gone; the
    # counters' files stay (a restarted worker's totals must not go down).
    assert not list(metrics_dir.glob("gauge_live*.db"))
    assert {path.name for path in metrics_dir.glob("counter_*.db")} == {
        f"counter_{pid}.db" for pid in pids
    }


def assert_sums(scraped: Scrape, *, messages: int, sockets: int) -> None:
    assert scraped.value("chat_open_sockets") == sockets
    assert scraped.value("chat_messages_stored_total") == messages
    assert scraped.value("chat_commit_batch_size_count") == messages
    assert scraped.value("chat_commit_batch_size_sum") == messages
    # Each node observes the batches it committed; together, every one of them.
    assert scraped.value("chat_delivery_latency_seconds_count") == messages
    # Every worker's hub hands every message (its own, and the other's through Redis) to the
    # sockets it holds: together, every message to every socket.
    assert scraped.value("chat_broadcast_deliveries_total") == messages * sockets
    assert scraped.value("chat_relay_replays_total") == 2  # one per worker at start
    assert scraped.value("chat_broker_up") == 1  # the lowest over the live workers
    assert scraped.value("chat_slow_consumer_evictions_total") == 0
    # Multiprocess mode merges no process collector: a scrape must not show one worker's.
    assert "process_resident_memory_bytes" not in scraped.families
