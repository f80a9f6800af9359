"""SIGKILL in the middle of a stream: nothing acknowledged is lost, nothing is stored twice."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.faults.clients import HttpPoster, Ledger, SocketSender, finish, wait_until
from tests.faults.conftest import (
    ProcessFactory,
    assert_acknowledged_stored_once,
    integrity_check,
)

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KILL_CYCLES = 8
SOCKET_CLIENTS = 4
# Acknowledgements to wait for after each (re)start before the next kill.
ACKS_PER_CYCLE = 100


async def test_sigkill_mid_stream_loses_no_acknowledged_message_and_stores_none_twice(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    server = make_process("crash")
    ledger = Ledger()
    senders = [
        SocketSender(f"ws{i}", server.ws_url, ledger, window=16) for i in range(SOCKET_CLIENTS)
    ]
    poster = HttpPoster("http", server.url, ledger)
    tasks = [asyncio.create_task(client.run()) for client in [*senders, poster]]

    acked_before_kill: list[int] = []
    for cycle in range(KILL_CYCLES):
        target = len(ledger.acked) + ACKS_PER_CYCLE
        await wait_until(lambda target=target: len(ledger.acked) >= target, 30, f"{target} acks")
        server.kill()
        acked_before_kill.append(len(ledger.acked))
        # What was acknowledged before the kill must already be on disk, before any resend.
        assert_acknowledged_stored_once(ledger, server.database_path)
        logger.info("cycle %d: killed with %d acknowledged", cycle + 1, len(ledger.acked))
        await asyncio.to_thread(server.start)

    for client in [*senders, poster]:
        client.stopping = True
    await finish(tasks, seconds=30)

    rows = assert_acknowledged_stored_once(ledger, server.database_path)
    # Every message any client produced was finally acknowledged, by resending after restarts.
    assert set(ledger.acked) == ledger.sent
    assert len(rows) == len(ledger.sent), "rows without a client that sent them"
    assert integrity_check(server.database_path) == "ok"
    assert "Traceback" not in server.log_text()
    record_property("kill_cycles", KILL_CYCLES)
    record_property("messages_acknowledged", len(ledger.acked))
    record_property("acknowledged_at_each_kill", acked_before_kill)
    record_property("reconnects", ledger.connects)
    record_property("resends", ledger.resends)
    logger.info(
        "crash safety: %d SIGKILL cycles, %d messages acknowledged and stored exactly once "
        "(acks at each kill %s), %d socket connects, %d resend attempts, errors seen %s, "
        "integrity ok",
        KILL_CYCLES,
        len(ledger.acked),
        acked_before_kill,
        ledger.connects,
        ledger.resends,
        dict(ledger.errors),
    )
