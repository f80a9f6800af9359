"""SIGTERM with open sockets and messages in flight: close 1012/1001, drain, exit promptly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import httpx
import pytest
from websockets.sync.client import connect as ws_sync_connect

from tests.faults.clients import (
    HttpPoster,
    Ledger,
    Observer,
    SocketSender,
    finish,
    wait_until,
)
from tests.faults.conftest import (
    ProcessFactory,
    assert_acknowledged_stored_once,
    integrity_check,
    log_problems,
    stored_messages,
)
from tests.faults.rawws import RawSocket
from tests.support.process import ChatServer

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.anyio

GOING_AWAY = {1001, 1012}
EXIT_BOUND_S = 15.0
SOCKET_CLIENTS = 4
STALLING_MESSAGES = 600


async def test_sigterm_closes_sockets_drains_writes_and_a_reconnecting_reader_misses_nothing(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    server = make_process("graceful")
    observer = Observer(server.ws_url)
    watching = asyncio.create_task(observer.run_once())
    await wait_until(observer.connected.is_set, 10, "the observer to connect")
    # A busy page: it writes all the time and reads only now and then.
    chatterbox = RawSocket(server.port)
    chattering = asyncio.create_task(asyncio.to_thread(chatterbox.chatter_until_closed, 60))
    ledger = Ledger()
    senders = [
        SocketSender(f"ws{i}", server.ws_url, ledger, window=16) for i in range(SOCKET_CLIENTS)
    ]
    poster = HttpPoster("http", server.url, ledger)
    clients = [*senders, poster]
    tasks = [asyncio.create_task(client.run()) for client in clients]
    await wait_until(lambda: len(ledger.acked) >= 300, 30, "300 acknowledged messages")

    in_flight = sum(len(sender.outbox) for sender in senders) + (poster.pending is not None)
    pid = server.pid
    exit_code, exit_seconds = await asyncio.to_thread(server.terminate, EXIT_BOUND_S)
    acked_at_exit = dict(ledger.acked)
    await asyncio.wait_for(watching, 5)
    chatter_ending = await asyncio.wait_for(chattering, 5)
    chatterbox.close()

    assert_clean_exit(server, pid=pid, exit_code=exit_code, exit_seconds=exit_seconds)
    # Every socket open at SIGTERM was closed by the server as "going away / restarting".
    assert observer.close_codes and set(observer.close_codes) <= GOING_AWAY, observer.close_codes
    # A sender may still be reading the broadcasts buffered ahead of the close frame.
    await wait_until(
        lambda: len(ledger.close_codes) >= SOCKET_CLIENTS, 10, "every sender to see the close"
    )
    assert set(ledger.close_codes) <= GOING_AWAY, ledger.close_codes
    # Even a peer that was writing when the server closed reads the close frame, not a reset.
    assert chatter_ending.close_code in GOING_AWAY, chatter_ending
    # Everything acknowledged before the exit is on disk, once, and the file is whole.
    rows = assert_acknowledged_stored_once(ledger, server.database_path)
    assert integrity_check(server.database_path) == "ok"
    assert not log_problems(server.log_text()), log_problems(server.log_text())
    drained = sum(1 for _, client_id, _ in rows if client_id not in acked_at_exit)
    seen_before = set(observer.ids)

    # Restart: the reader reconnects, then catches up from the last id it saw, like the page.
    await asyncio.to_thread(server.start)
    reader = Observer(server.ws_url)
    reading = asyncio.create_task(reader.run_once())
    await wait_until(reader.connected.is_set, 10, "the reader to reconnect")
    caught_up = await catch_up(server.url, after=max(seen_before, default=0))
    for client in clients:
        client.stopping = True
    await finish(tasks, seconds=30)

    rows = assert_acknowledged_stored_once(ledger, server.database_path)
    assert set(ledger.acked) == ledger.sent
    stored = {message_id for message_id, _, _ in rows}
    await wait_until(lambda: max(stored) in reader.ids or max(stored) in caught_up, 10, "the end")
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    missed = stored - seen_before - set(caught_up) - set(reader.ids)
    assert not missed, f"the reconnecting reader missed {sorted(missed)[:10]}"
    assert len(stored_messages(server.database_path)) == len(ledger.sent)

    record_property("sigterm_exit_seconds", round(exit_seconds, 3))
    logger.info(
        "graceful shutdown: exit %d after %.2fs with %d sockets open and %d messages in flight; "
        "close codes %s; %d acknowledged before exit all stored; %d more stored while draining; "
        "reader caught up %d after reconnecting, missed 0",
        exit_code,
        exit_seconds,
        SOCKET_CLIENTS + 2,
        in_flight,
        sorted({*ledger.close_codes, *observer.close_codes, chatter_ending.close_code}),
        len(acked_at_exit),
        drained,
        len(caught_up),
    )


def assert_clean_exit(server: ChatServer, *, pid: int, exit_code: int, exit_seconds: float) -> None:
    # A stop a supervisor asked for is a clean stop: status 0, not death by the signal (143).
    assert exit_code == 0, server.log_tail()
    assert server.log_text().rstrip().endswith(f"Finished server process [{pid}]")
    assert "Application shutdown complete." in server.log_text()
    assert exit_seconds < EXIT_BOUND_S


async def catch_up(url: str, *, after: int) -> list[int]:
    """Page through `GET /api/messages?after=` the way the page does after a reconnect."""
    ids: list[int] = []
    async with httpx.AsyncClient(base_url=url, timeout=5.0, trust_env=False) as client:
        for _ in range(1000):
            response = await client.get("/api/messages", params={"after": after, "limit": 200})
            assert response.status_code == 200, response.text
            page = response.json()
            ids.extend(message["id"] for message in page["messages"])
            if not page["has_newer"]:
                return ids
            after = page["newer_cursor"]
    raise AssertionError("catch-up never reached the newest message")


@pytest.mark.slow
def test_sigterm_exits_in_bounded_time_even_when_a_reader_has_stopped_reading(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    # A huge send queue keeps the stalled reader from being evicted: the worst case for shutdown,
    # whose close frame can never be flushed to it.
    server = make_process(
        "stalled", send_queue_size="100000", max_message_chars="12000", max_frame_bytes="16384"
    )
    stalled = RawSocket(server.port, receive_buffer=4096)
    with ws_sync_connect(server.ws_url, proxy=None, compression=None, open_timeout=5) as sender:
        # About 7 MB of frames: more than the kernel buffers between server and reader hold.
        for n in range(STALLING_MESSAGES):
            sender.send(json.dumps({"body": "z" * 12_000, "client_id": f"stall-{n}"}))
        for _ in range(STALLING_MESSAGES):  # every echo: the stalled reader got them all queued
            json.loads(sender.recv(timeout=10))
    exit_code, exit_seconds = server.terminate(EXIT_BOUND_S)
    stalled.close()
    assert exit_code == 0, server.log_tail()
    assert exit_seconds < EXIT_BOUND_S
    assert "Application shutdown complete." in server.log_text()
    assert "Traceback" not in server.log_text()
    record_property("sigterm_exit_seconds_with_stalled_reader", round(exit_seconds, 2))
    logger.info(
        "graceful shutdown with a reader that stopped reading (%d x 12 KB unread): exit %d after "
        "%.2fs",
        STALLING_MESSAGES,
        exit_code,
        exit_seconds,
    )
