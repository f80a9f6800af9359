"""Slow and dead peers: bounded memory, an undisturbed bystander, prompt detection, no leaks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import statistics
import time
from collections import Counter
from datetime import datetime

import psutil
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sync_connect

from tests.faults.clients import Ledger, SocketSender, finish, wait_until, ws_connect
from tests.faults.conftest import ProcessFactory, log_problems
from tests.faults.rawws import HandshakeRefused, RawSocket

logger = logging.getLogger(__name__)

FLOOD_MESSAGES = 20_000
FLOOD_SENDERS = 10
BODY_BYTES = 1000
MB = 1024 * 1024
# The flood itself grows the server by 5-16 MB (SQLite page caches of the pool, allocator).
# Holding the flood for the slow reader would add at least 20,000 x 2.4 KB (body, rendered
# html, JSON) = 48 MB on top.
RSS_GROWTH_BOUND_MB = 40
BYSTANDER_MAX_LATENCY_S = 2.0
# An evicted connection is closed at once and aborted 10 s later if the peer still reads nothing.
EVICTED_GONE_S = 15.0
DEAD_PEER_BOUND_S = 5.0
RESETS = 1000
RESET_BATCH = 100


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.timeout(240)  # the flood takes about a minute on a busy two-core machine
async def test_a_reader_that_never_reads_costs_bounded_memory_and_delays_nobody(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    # Durability is not under test here; NORMAL lets the flood finish in seconds.
    server = make_process("flood", sqlite_synchronous="NORMAL")
    process = psutil.Process(server.pid)
    # It completes the handshake, then never reads again.
    slow = RawSocket(server.port, receive_buffer=4096)
    ledger = Ledger()
    arrivals: dict[str, float] = {}
    async with ws_connect(server.ws_url, max_queue=None) as bystander:

        async def watch() -> None:
            async for raw in bystander:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    arrivals[frame["client_id"]] = time.monotonic()

        watching = asyncio.create_task(watch())
        sampler = ServerSampler(process, peer_port=slow.local_port)
        sampling = asyncio.create_task(sampler.run())
        per_sender = FLOOD_MESSAGES // FLOOD_SENDERS
        # Two in flight per sender keep the server busy without queueing up latency of our own.
        senders = [
            SocketSender(
                f"flood{i}", server.ws_url, ledger, window=2, limit=per_sender, body_size=BODY_BYTES
            )
            for i in range(FLOOD_SENDERS)
        ]
        started = time.monotonic()
        flood_started_at = time.time()
        await finish([asyncio.create_task(s.run()) for s in senders], seconds=180)
        flood_seconds = time.monotonic() - started
        await wait_until(lambda: len(arrivals) >= FLOOD_MESSAGES, 20, "the bystander's last frame")
        after = process.memory_info().rss
        for task in (sampling, watching):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # Evicted, the slow reader must not linger even though it never reads: the server sends
    # 4008 past its full buffers and aborts the connection when the close cannot complete.
    evicted_at = log_time(server.log_text(), "evicted 1 slow subscriber(s): send queue full")
    if sampler.peer_gone_at is None:
        await wait_until(
            lambda: not server_holds(process, slow.local_port), EVICTED_GONE_S, "the slow reader"
        )
        sampler.peer_gone_at = time.time()
    gone_after_eviction = sampler.peer_gone_at - evicted_at
    assert gone_after_eviction < EVICTED_GONE_S, gone_after_eviction
    ending = await asyncio.to_thread(slow.read_until_closed, 10)
    slow.close()

    assert not ledger.errors, dict(ledger.errors)
    assert ledger.connects == FLOOD_SENDERS, "a sender was dropped"
    # The bystander got every message, and promptly.
    assert len(arrivals) == FLOOD_MESSAGES
    latencies = sorted(arrivals[cid] - ledger.sent_at[cid] for cid in arrivals)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert latencies[-1] < BYSTANDER_MAX_LATENCY_S, latencies[-1]
    # The slow reader was cut off: it reads a few frames, then the 4008 close or a dead socket.
    assert ending.close_code == 4008 or ending.how in ("eof", "reset"), ending
    assert ending.text_frames < FLOOD_MESSAGES // 4, ending
    growth_mb = (sampler.peak - sampler.baseline) / MB
    assert growth_mb < RSS_GROWTH_BOUND_MB, f"RSS grew {growth_mb:.1f} MB"
    assert not log_problems(server.log_text()), log_problems(server.log_text())

    record_property("rss_growth_mb", round(growth_mb, 1))
    record_property("bystander_latency_ms", [round(x * 1000, 1) for x in (p50, p99, latencies[-1])])
    logger.info(
        "slow reader: %d x %d-byte messages from %d senders in %.1fs (%.0f/s); server RSS "
        "%.1f MB before, peak %.1f MB (+%.1f MB), %.1f MB after; bystander latency p50 %.1f ms, "
        "p99 %.1f ms, max %.1f ms; slow reader evicted %.1fs into the flood, its connection gone "
        "%.1fs later, without it reading; then it read %d frames and saw %s (code %s)",
        FLOOD_MESSAGES,
        BODY_BYTES,
        FLOOD_SENDERS,
        flood_seconds,
        FLOOD_MESSAGES / flood_seconds,
        sampler.baseline / MB,
        sampler.peak / MB,
        growth_mb,
        after / MB,
        p50 * 1000,
        p99 * 1000,
        latencies[-1] * 1000,
        evicted_at - flood_started_at,
        gone_after_eviction,
        ending.text_frames,
        ending.how,
        ending.close_code,
    )


class ServerSampler:
    """Samples the server's RSS, and notices when it drops its connection to one client."""

    def __init__(self, process: psutil.Process, *, peer_port: int) -> None:
        self.process = process
        self.peer_port = peer_port
        self.baseline = process.memory_info().rss
        self.peak = self.baseline
        self.peer_gone_at: float | None = None  # wall clock, to compare with the log

    async def run(self) -> None:
        for tick in itertools.count():
            self.peak = max(self.peak, self.process.memory_info().rss)
            # Reading the socket table costs more than the RSS: every fifth sample.
            checking = self.peer_gone_at is None and tick % 5 == 0
            if checking and not server_holds(self.process, self.peer_port):
                self.peer_gone_at = time.time()
            await asyncio.sleep(0.05)


def log_time(text: str, needle: str) -> float:
    """The wall-clock time of the first log line containing `needle`."""
    for line in text.splitlines():
        if needle in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    raise AssertionError(f"no log line contains {needle!r}")


def tcp_connections(process: psutil.Process) -> list[str]:
    """The server's TCP sockets other than its listener."""
    return [
        f"{c.raddr.port if c.raddr else '-'} {c.status}"
        for c in process.net_connections(kind="tcp")
        if c.status != psutil.CONN_LISTEN
    ]


def server_holds(process: psutil.Process, peer_port: int) -> bool:
    """Whether the server process still has a TCP connection to this local client port."""
    return any(
        connection.raddr and connection.raddr.port == peer_port
        for connection in process.net_connections(kind="tcp")
    )


def test_a_peer_that_never_answers_pings_is_dropped_and_its_slot_freed(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    server = make_process(
        "pings", ws_ping_interval="0.5", ws_ping_timeout="0.5", max_connections_per_address="1"
    )
    dead = RawSocket(server.port)  # completes the handshake, then never answers anything
    opened = time.monotonic()
    # While it is counted, the address has no connection to spare.
    with pytest.raises(HandshakeRefused) as refused:
        RawSocket(server.port).close()
    assert refused.value.status == 429
    ending = dead.read_until_closed(DEAD_PEER_BOUND_S)
    dead.close()
    dropped_after = time.monotonic() - opened
    assert ending.how in ("close frame", "eof", "reset"), ending
    assert dropped_after < DEAD_PEER_BOUND_S

    # Its slot is free again, and a live peer (it answers pings) outlasts many ping timeouts.
    freed = open_with_retry(server.port, seconds=5)
    freed_after = time.monotonic() - opened
    freed.close()
    alive = connect_when_free(server.port)
    with alive:
        with pytest.raises(TimeoutError):
            alive.recv(timeout=3.0)  # six ping intervals: nothing arrives, nothing is closed
        alive.send(json.dumps({"body": "still here", "client_id": "alive-1"}))
        echo = json.loads(alive.recv(timeout=5))
        assert echo["client_id"] == "alive-1"
    assert not log_problems(server.log_text()), log_problems(server.log_text())
    record_property("dead_peer_dropped_seconds", round(dropped_after, 2))
    logger.info(
        "dead peer (ping interval 0.5 s, timeout 0.5 s): dropped after %.2fs by %s (code %s); "
        "its per-address slot free again after %.2fs; a live peer stayed 3 s and was answered",
        dropped_after,
        ending.how,
        ending.close_code,
        freed_after,
    )


def test_a_thousand_connections_reset_mid_flight_leave_no_trace(
    make_process: ProcessFactory, record_property: pytest.RecordProperty
) -> None:
    # The total cap is one batch: each batch fits only if the last one was entirely forgotten.
    server = make_process(
        "resets", max_connections=str(RESET_BATCH), max_connections_per_address=str(RESET_BATCH)
    )
    process = psutil.Process(server.pid)
    fds_before = process.num_fds()
    started = time.monotonic()
    kinds: Counter[str] = Counter()
    for batch in range(RESETS // RESET_BATCH):
        sockets = []
        for i in range(RESET_BATCH):
            kind = ("after connect", "mid-handshake", "open", "message in flight")[i % 4]
            kinds[kind] += 1
            if kind == "after connect":
                sock = RawSocket(server.port, handshake=False)
            elif kind == "mid-handshake":
                sock = RawSocket(server.port, handshake=False)
                sock.send_upgrade()
            else:
                sock = open_with_retry(server.port, seconds=10)
                if kind == "message in flight":
                    frame = {"body": f"reset {batch}-{i}", "client_id": f"reset-{batch}-{i}"}
                    sock.send_text(json.dumps(frame))
            sockets.append(sock)
        for sock in sockets:
            sock.reset()
    churn_seconds = time.monotonic() - started

    # Back to zero: the whole cap can be taken at once, and then a client is served normally.
    held = [open_with_retry(server.port, seconds=10) for _ in range(RESET_BATCH)]
    for sock in held:
        sock.close()
    with connect_when_free(server.port) as client:
        client.send(json.dumps({"body": "after the storm", "client_id": "after"}))
        assert json.loads(client.recv(timeout=5))["client_id"] == "after"
    # And the server holds no socket but its listener (descriptors above the baseline are the
    # SQLite connection pool, opened by the first write).
    deadline = time.monotonic() + 10
    while (remaining := tcp_connections(process)) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the server's socket table
    assert not remaining, remaining[:5]
    fds_after = process.num_fds()
    text = server.log_text()
    assert not log_problems(text), log_problems(text)[:5]
    assert server.request("GET", "/healthz")[0] == 200
    record_property("resets", RESETS)
    logger.info(
        "%d connections reset with TCP RST in batches of %d (%s) in %.1fs: no traceback, "
        "connection count back to zero (all %d slots reusable), server fds %d before, %d after",
        RESETS,
        RESET_BATCH,
        dict(kinds),
        churn_seconds,
        RESET_BATCH,
        fds_before,
        fds_after,
    )


def open_with_retry(port: int, *, seconds: float) -> RawSocket:
    """Open a socket, retrying while a refusal (429/503) says slots are still being released."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return RawSocket(port)
        except HandshakeRefused as refused:
            if refused.status not in (429, 503) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def connect_when_free(port: int) -> ClientConnection:
    deadline = time.monotonic() + 5
    while True:
        try:
            return sync_connect(
                f"ws://127.0.0.1:{port}/chatsocket", proxy=None, compression=None, open_timeout=5
            )
        except InvalidStatus:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.01)
