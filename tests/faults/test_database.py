"""Database trouble: two processes on one SQLite file, and a write lock held by a stranger."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from typing import Any

import httpx
import pytest

from tests.faults.clients import HttpPoster, Ledger, SocketSender, finish, ws_connect
from tests.faults.conftest import (
    ProcessFactory,
    assert_acknowledged_stored_once,
    integrity_check,
    log_problems,
    stored_messages,
)

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.anyio

MESSAGES_PER_CLIENT = 100
SOCKET_CLIENTS_PER_SERVER = 4


async def test_two_processes_on_one_file_never_surface_a_locked_database(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    servers = [make_process("left"), make_process("right")]
    assert servers[0].database_path == servers[1].database_path
    ledger = Ledger()
    clients: list[SocketSender | HttpPoster] = []
    for server in servers:
        side = server.log_path.stem
        clients += [
            SocketSender(
                f"{side}-ws{i}", server.ws_url, ledger, window=4, limit=MESSAGES_PER_CLIENT
            )
            for i in range(SOCKET_CLIENTS_PER_SERVER)
        ]
        clients.append(HttpPoster(f"{side}-http", server.url, ledger, limit=MESSAGES_PER_CLIENT))
    started = time.monotonic()
    await finish([asyncio.create_task(client.run()) for client in clients], seconds=90)
    elapsed = time.monotonic() - started

    # Not one "database is locked" / storage_unavailable / 5xx reached a client.
    assert not ledger.errors, dict(ledger.errors)
    assert ledger.connects == len(clients) - len(servers), "a socket was dropped"
    expected = len(clients) * MESSAGES_PER_CLIENT
    assert len(ledger.acked) == expected
    rows = assert_acknowledged_stored_once(ledger, servers[0].database_path)
    assert len(rows) == expected
    assert integrity_check(servers[0].database_path) == "ok"
    for server in servers:
        text = server.log_text()
        assert "database is locked" not in text
        assert not log_problems(text), log_problems(text)
    record_property("two_process_messages", expected)
    logger.info(
        "two processes, one SQLite file: %d clients stored %d messages in %.1fs "
        "(%.0f/s), 0 errors, each stored once, integrity ok",
        len(clients),
        expected,
        elapsed,
        expected / elapsed,
    )


async def test_a_held_write_lock_refuses_sends_keeps_reads_and_recovers_by_itself(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    server = make_process("locked", sqlite_busy_timeout_ms="300")
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10.0, trust_env=False) as http,
        ws_connect(server.ws_url) as websocket,
    ):
        first = await send_and_answer(websocket, "before the lock", "before")
        assert first["type"] == "message"

        holder = sqlite3.connect(server.database_path, isolation_level=None, timeout=5)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process now holds the write lock
            started = time.monotonic()
            refused = await send_and_answer(websocket, "while locked", "locked-ws")
            refused_after = time.monotonic() - started
            # An error naming the message, never a false echo.
            assert refused["type"] == "error", refused
            assert refused["error"] == "storage_unavailable"
            assert refused["client_id"] == "locked-ws"

            posted = await http.post("/api/messages", json=draft("locked-http"))
            assert posted.status_code == 503, posted.text
            assert posted.json()["error"] == "storage_unavailable"
            assert int(posted.headers["retry-after"]) >= 1

            # Reads keep working while writes cannot.
            history = await http.get("/api/messages")
            assert history.status_code == 200
            assert [m["client_id"] for m in history.json()["messages"]] == ["before"]
            page = await http.get("/")
            assert page.status_code == 200
            assert "before the lock" in page.text
            ready = await http.get("/readyz")
            stored_while_locked = {cid for _, cid, _ in stored_messages(server.database_path)}
            assert stored_while_locked == {"before"}
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        # The lock is gone: the same client_ids go through, by themselves, without a restart.
        again = await send_and_answer(websocket, "while locked", "locked-ws")
        assert again["type"] == "message", again
        assert again["client_id"] == "locked-ws"
        reposted = await http.post("/api/messages", json=draft("locked-http"))
        assert reposted.status_code == 201, reposted.text

    rows = stored_messages(server.database_path)
    assert sorted(cid or "" for _, cid, _ in rows) == ["before", "locked-http", "locked-ws"]
    assert integrity_check(server.database_path) == "ok"
    text = server.log_text()
    assert "could not store 1 message(s)" in text
    assert not log_problems(text), log_problems(text)
    record_property("locked_refusal_seconds", round(refused_after, 3))
    record_property("readyz_while_write_locked", ready.status_code)
    logger.info(
        "write lock held by another process (busy timeout 300 ms): the sender got "
        "storage_unavailable after %.2fs, POST got 503 Retry-After %s, history and page 200, "
        "/readyz %d %s; after release the same client_ids were stored once",
        refused_after,
        posted.headers["retry-after"],
        ready.status_code,
        ready.json().get("checks"),
    )


def draft(client_id: str) -> dict[str, str]:
    return {"body": "while locked", "client_id": client_id}


async def send_and_answer(websocket: Any, body: str, client_id: str) -> dict[str, Any]:
    """Send one message and return the first frame that answers it (its echo or an error)."""
    await websocket.send(json.dumps({"body": body, "client_id": client_id}))
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await websocket.recv())
            if frame.get("client_id") == client_id:
                return frame
