"""The load generator: one asyncio process, run by the harness as ``python -m bench.loadgen``.

It reads one JSON job from stdin, drives the server named in it over loopback and writes one
JSON result to stdout. It measures its own CPU time (and the server's) over each measurement
window, so the report can show that the load generator was not the bottleneck.

Latency is taken with ``time.monotonic_ns()``: all clients live in this process, and on Linux the
monotonic clock is system-wide anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.peers._common import raise_fd_limit
from bench.stats import percentile
from bench.wsclient import WsClient, open_connection

NS = 1_000_000_000
CONNECT_CONCURRENCY = 50
CONNECT_TIMEOUT = 30.0
DRAIN_QUIET = 2.0  # seconds without a delivery that end the drain


# --------------------------------------------------------------------------- CPU and memory


class CpuMeter:
    """CPU seconds used by this process and by the server between ``start`` and ``stop``."""

    def __init__(self, server_pid: int | None) -> None:
        self._own = psutil.Process()
        self._server = psutil.Process(server_pid) if server_pid else None
        self._start = (0.0, 0.0, 0.0, 0.0)

    def _sample(self) -> tuple[float, float, float, float]:
        own = self._own.cpu_times()
        server = 0.0
        if self._server is not None:
            server = sum(_cpu_seconds(p) for p in _tree(self._server))
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return time.monotonic(), own.user + own.system, server, busy

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        """Percent of one core: this process, the server, and everything else on the machine."""
        sample = self._sample()
        elapsed = max(sample[0] - self._start[0], 1e-9)
        own, server, busy = (100.0 * (sample[i] - self._start[i]) / elapsed for i in (1, 2, 3))
        return {
            "loadgen_cpu_pct": own,
            "server_cpu_pct": server,
            "other_cpu_pct": max(busy - own - server, 0.0),
        }


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def server_rss(pid: int) -> int:
    """Resident set size of the server and any children it forked, in bytes."""
    total = 0
    for process in _tree(psutil.Process(pid)):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


# --------------------------------------------------------------------------- connections


@dataclass
class Clients:
    """Open client connections and how they ended."""

    sockets: list[WsClient] = field(default_factory=list)
    connect_errors: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    closing: bool = False

    def _on_closed(self, client: WsClient) -> None:
        if not self.closing:
            self.closes[str(client.close_code)] += 1

    def add(self, client: WsClient) -> None:
        self.sockets.append(client)
        client.closed.add_done_callback(lambda _: self._on_closed(client))


async def open_clients(
    url: str, count: int, compression: str | None, tokens: Sequence[str] = ()
) -> Clients:
    """Open ``count`` sockets; with ``tokens``, socket i signs in with ``tokens[i]`` (Bearer)."""
    clients = Clients()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    client = await open_connection(
                        url,
                        index=index,
                        compression=compression,
                        headers=_bearer(tokens, index),
                    )
            except (OSError, TimeoutError) as exc:
                clients.connect_errors[type(exc).__name__] += 1
                return
            clients.add(client)

    await asyncio.gather(*(one(index) for index in range(count)))
    clients.sockets.sort(key=lambda client: client.index)
    for index, client in enumerate(clients.sockets):
        client.index = index
    return clients


def _bearer(tokens: Sequence[str], index: int) -> tuple[tuple[str, str], ...]:
    if not tokens:
        return ()
    return (("Authorization", f"Bearer {tokens[index % len(tokens)]}"),)


async def close_clients(clients: Clients) -> None:
    clients.closing = True
    await asyncio.gather(*(client.close() for client in clients.sockets))


# --------------------------------------------------------------------------- fan-out


@dataclass
class Phase:
    """Counters for one load phase; every token it sends starts with ``prefix``."""

    prefix: str
    clients: int
    measure_from: int = 0
    measure_to: int = 2**63
    sent: int = 0
    rejected: int = 0
    received: int = 0
    deliveries_in_window: int = 0
    acks_in_window: int = 0
    latencies: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sending_over: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expected(self) -> int:
        return (self.sent - self.rejected) * self.clients

    def check_done(self) -> None:
        if self.sending_over and self.received >= self.expected:
            self.done.set()


def find_token(data: bytes, prefix: bytes) -> list[bytes] | None:
    """``[sender, seq, sent_ns]`` from the body token in a frame, without parsing the JSON.

    The token also appears in the rendered html, and chat echoes ``client_id`` (the token
    without its time), so the first occurrence with three fields is the one.
    """
    start = data.find(prefix)
    while start >= 0:
        start += len(prefix)
        end = data.find(b'"', start)
        parts = data[start:end].split(b":")
        if len(parts) == 3:
            return parts
        start = data.find(prefix, end)
    return None


class FanOut:
    """Clients that read every frame; senders put ``<prefix><sender>:<seq>:<ns>`` in the body.

    Client ``i < senders`` is sender ``i``. A message is acknowledged when its sender's own
    socket receives it, which frees one slot of that sender's in-flight window.
    """

    def __init__(self, clients: Clients, senders: int, window: int) -> None:
        self.clients = clients
        self.senders = senders
        self.phase = Phase(prefix="-", clients=len(clients.sockets))
        self._prefix = b"-"
        self.window = window
        self.room: str | None = None  # None: the Tornado-era frame, which chat puts in general
        self.send_until = 0  # windowed mode only: acks trigger sends until this monotonic ns
        self.seqs = [0] * senders
        for client in clients.sockets:
            client.on_text = self._on_text

    def _on_text(self, client: WsClient, data: bytes, index: int) -> None:
        now = time.monotonic_ns()
        if b'"error"' in data:
            self._on_error(json.loads(data), index)
            return
        parts = find_token(data, self._prefix)
        if parts is None:
            return
        phase = self.phase
        sent = int(parts[2])
        phase.received += 1
        phase.check_done()
        in_window = phase.measure_from <= now < phase.measure_to
        if in_window:
            phase.deliveries_in_window += 1
        if phase.measure_from <= sent < phase.measure_to:
            phase.latencies.append(now - sent)
        if index < self.senders and int(parts[0]) == index:
            if in_window:
                phase.acks_in_window += 1
            self._send_next(index)

    def _on_error(self, message: dict[str, Any], index: int) -> None:
        """Errors go to the sender only, so one on a sender's socket answers one of its sends
        (``rate_limited`` carries no client_id): the message is not stored, not fanned out."""
        phase = self.phase
        phase.errors[str(message.get("error"))] += 1
        if index < self.senders:
            phase.rejected += 1
            phase.check_done()
            self._send_next(index)

    def new_phase(self, prefix: str) -> Phase:
        self.phase = Phase(prefix=prefix, clients=len(self.clients.sockets))
        self.send_until = 0
        self.seqs = [0] * self.senders
        self._prefix = prefix.encode()
        return self.phase

    def send(self, sender: int, seq: int) -> None:
        phase = self.phase
        client_id = f"{phase.prefix}{sender}:{seq}"
        payload = {"body": f"{client_id}:{time.monotonic_ns()}", "client_id": client_id}
        if self.room is not None:
            payload["room"] = self.room
        phase.sent += 1
        self.clients.sockets[sender].send_text(json.dumps(payload).encode())

    def start_windowed(self, until: int) -> None:
        """Fill every sender's window; each acknowledgement then sends the next message at once.

        Sending from the receive callback, not from a task woken by a semaphore, matters: with
        thousands of frames per event-loop iteration a woken task runs only once per iteration.
        """
        self.send_until = until
        for sender in range(self.senders):
            for _ in range(self.window):
                self._send_next(sender)

    def _send_next(self, sender: int) -> None:
        if time.monotonic_ns() < self.send_until:
            self.send(sender, self.seqs[sender])
            self.seqs[sender] += 1

    async def paced_sender(
        self, sender: int, *, interval: float, offset: float, until: int
    ) -> None:
        """Send one message every ``interval`` seconds from ``offset``, not waiting for acks."""
        start = time.monotonic()
        seq = 0
        while True:
            due = start + offset + seq * interval
            if due * NS >= until:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send(sender, seq)
            seq += 1

    async def drain(self, *, quiet: float, limit: float) -> None:
        """Wait until every expected delivery has arrived, or none has for ``quiet`` seconds,
        or ``limit`` seconds have passed: what is missing then is counted as lost."""
        phase = self.phase
        phase.sending_over = True
        phase.check_done()
        deadline = time.monotonic() + limit
        seen = -1
        while not phase.done.is_set() and phase.received != seen:
            seen = phase.received
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(quiet, remaining)):
                    await phase.done.wait()

    async def stop(self) -> None:
        await close_clients(self.clients)


def phase_result(phase: Phase, *, seconds: float, cpu: dict[str, float]) -> dict[str, Any]:
    latencies = sorted(phase.latencies)
    return {
        "sent": phase.sent,
        "rejected": phase.rejected,
        "expected": phase.expected,
        "received": phase.received,
        "lost": max(phase.expected - phase.received, 0),
        "loss_pct": 100.0 * max(phase.expected - phase.received, 0) / max(phase.expected, 1),
        "delivered_per_s": phase.deliveries_in_window / seconds,
        "acked_per_s": phase.acks_in_window / seconds,
        "p50_ms": percentile(latencies, 50) / 1e6,
        "p99_ms": percentile(latencies, 99) / 1e6,
        "max_ms": (latencies[-1] / 1e6) if latencies else float("nan"),
        "samples": len(latencies),
        "errors": dict(phase.errors),
        **cpu,
    }


async def run_phase(
    fanout: FanOut, job: dict[str, Any], *, prefix: str, rate: float | None
) -> dict[str, Any]:
    """One load phase: warm up, measure for ``duration`` seconds, stop sending, drain."""
    phase = fanout.new_phase(prefix)
    warmup, duration = float(job["warmup"]), float(job["duration"])
    now = time.monotonic_ns()
    phase.measure_from = now + int(warmup * NS)
    phase.measure_to = phase.measure_from + int(duration * NS)
    pacing: asyncio.Future[list[None]] | None = None
    if rate is None:
        fanout.start_windowed(phase.measure_to)
    else:
        interval = fanout.senders / rate
        pacing = asyncio.gather(
            *(
                fanout.paced_sender(
                    s,
                    interval=interval,
                    offset=s * interval / fanout.senders,
                    until=phase.measure_to,
                )
                for s in range(fanout.senders)
            )
        )
    meter = CpuMeter(job.get("server_pid"))
    await asyncio.sleep(warmup)
    meter.start()
    await asyncio.sleep(max(phase.measure_to - time.monotonic_ns(), 0) / NS)
    cpu = meter.stop()
    if pacing is not None:
        await pacing
    drain_started = time.monotonic()
    await fanout.drain(quiet=DRAIN_QUIET, limit=float(job["drain"]))
    cpu["drain_s"] = time.monotonic() - drain_started
    return phase_result(phase, seconds=duration, cpu=cpu)


async def fanout_job(job: dict[str, Any]) -> dict[str, Any]:
    clients = await open_clients(job["url"], int(job["clients"]), job.get("compression"))
    result: dict[str, Any] = {
        "connected": len(clients.sockets),
        "connect_errors": dict(clients.connect_errors),
    }
    if len(clients.sockets) < int(job["senders"]):
        await close_clients(clients)
        result["error"] = "too few clients connected"
        return result
    fanout = FanOut(clients, int(job["senders"]), int(job.get("window", 10)))
    try:
        phases = []
        for number, rate in enumerate(job.get("rates") or [None]):
            prefix = f"{job['run_id']}{number}:"
            outcome = await run_phase(fanout, job, prefix=prefix, rate=rate)
            phases.append({"rate": rate, **outcome})
        result["phases"] = phases
    finally:
        result["disconnects"] = dict(clients.closes)
        await fanout.stop()
    return result


# --------------------------------------------------------------------------- idle memory


async def idle_job(job: dict[str, Any]) -> dict[str, Any]:
    """Server RSS growth per idle connection; one warm-up connection loads lazy code first."""
    pid = int(job["server_pid"])
    warm = await open_clients(job["url"], 1, job.get("compression"), job.get("tokens") or ())
    await close_clients(warm)
    await asyncio.sleep(float(job["settle"]))
    before = server_rss(pid)
    tokens = job.get("tokens") or ()
    clients = await open_clients(job["url"], int(job["clients"]), job.get("compression"), tokens)
    try:
        await asyncio.sleep(float(job["settle"]))
        after = server_rss(pid)
    finally:
        await close_clients(clients)
    connected = len(clients.sockets)
    return {
        "connected": connected,
        "connect_errors": dict(clients.connect_errors),
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "kib_per_conn": (after - before) / 1024 / max(connected, 1),
    }


# --------------------------------------------------------------------------- history (HTTP)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (Content-Length or chunked) from a keep-alive connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks)
            chunks.append(chunk[:-2])
    raise ValueError(f"response without a length: {lines[0]!r}")


Request = Callable[[], bytes]
Check = Callable[[int, bytes], str | None]


def history_request(job: dict[str, Any]) -> tuple[Request, Check]:
    """``GET /api/messages?before=<random id>`` (or ``around=``, a permalink's page, with
    ``"cursor": "around"``); a 200 with an empty page counts as an error."""
    host, port, max_id, limit = job["host"], job["port"], int(job["max_id"]), job["limit"]
    cursor = job.get("cursor", "before")
    low, high = (1, max_id) if cursor == "around" else (2, max_id + 1)
    rng = random.Random()

    def request() -> bytes:
        at = rng.randint(low, high)
        return (
            f"GET /api/messages?{cursor}={at}&limit={limit} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
        ).encode()

    def check(status: int, body: bytes) -> str | None:
        if status != 200:
            return f"http_{status}"
        return None if json.loads(body).get("messages") else "empty_page"

    return request, check


def post_request(job: dict[str, Any]) -> tuple[Request, Check]:
    """``POST /api/messages`` with a fresh client_id each time; anything but 201 is an error."""
    host, port, prefix = job["host"], job["port"], job["run_id"]
    counter = itertools.count()

    def request() -> bytes:
        client_id = f"{prefix}:{next(counter)}"
        body = json.dumps({"body": f"{client_id}:{time.monotonic_ns()}", "client_id": client_id})
        return (
            f"POST /api/messages HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    def check(status: int, body: bytes) -> str | None:
        del body
        return None if status == 201 else f"http_{status}"

    return request, check


def get_request(job: dict[str, Any]) -> tuple[Request, Check]:
    """``GET <path>`` with ``headers``; with ``expect_events`` (catch-up) the answer must hold
    that many events, with ``expect_messages`` (a history page) at least one message."""
    host, port, path = job["host"], job["port"], job["path"]
    extra = "".join(f"{name}: {value}\r\n" for name, value in job.get("headers", {}).items())
    raw = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    expect_events = job.get("expect_events")

    def check(status: int, body: bytes) -> str | None:
        if status != 200:
            return f"http_{status}"
        answer = json.loads(body)
        if expect_events is not None:
            if answer.get("reload"):
                return "reload"
            if len(answer.get("events", ())) != int(expect_events):
                return "wrong_event_count"
        elif job.get("expect_messages") and not answer.get("messages"):
            return "empty_page"
        return None

    return lambda: raw, check


REQUESTS = {"history": history_request, "post": post_request, "get": get_request}


async def http_worker(
    job: dict[str, Any],
    requests: tuple[Request, Check],
    *,
    until: float,
    latencies: list[int],
    errors: Counter[str],
) -> None:
    """Requests one after another on one keep-alive connection until ``until``."""
    make, check = requests
    reader, writer = await asyncio.open_connection(job["host"], int(job["port"]))
    try:
        while time.monotonic() < until:
            request = make()
            start = time.monotonic_ns()
            writer.write(request)
            status, body = await asyncio.wait_for(read_response(reader), 10)
            latencies.append(time.monotonic_ns() - start)
            error = check(status, body)
            if error is not None:
                errors[error] += 1
    finally:
        writer.close()


async def http_job(job: dict[str, Any]) -> dict[str, Any]:
    """``concurrency`` keep-alive connections: warm up, then measure for ``duration`` seconds."""
    requests = REQUESTS[job["kind"]](job)
    workers = range(int(job["concurrency"]))
    warm_until = time.monotonic() + float(job["warmup"])
    warm_errors: Counter[str] = Counter()
    warm_latencies: list[int] = []
    await asyncio.gather(
        *(
            http_worker(
                job, requests, until=warm_until, latencies=warm_latencies, errors=warm_errors
            )
            for _ in workers
        )
    )
    latencies: list[int] = []
    errors: Counter[str] = Counter()
    meter = CpuMeter(job.get("server_pid"))
    meter.start()
    started = time.monotonic()
    until = started + float(job["duration"])
    await asyncio.gather(
        *(
            http_worker(job, requests, until=until, latencies=latencies, errors=errors)
            for _ in workers
        )
    )
    elapsed = time.monotonic() - started
    cpu = meter.stop()
    latencies.sort()
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "ok_per_s": (len(latencies) - sum(errors.values())) / elapsed,
        "p50_ms": percentile(latencies, 50) / 1e6,
        "p99_ms": percentile(latencies, 99) / 1e6,
        "errors": dict(errors),
        "warmup_requests": len(warm_latencies),
        "warmup_errors": dict(warm_errors),
        **cpu,
    }


# --------------------------------------------------------------------------- entry point

JOBS = {
    "fanout": fanout_job,
    "idle": idle_job,
    "history": http_job,
    "post": http_job,
    "get": http_job,
}


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    # Imported here: those jobs build on this module.
    from bench.loadgen_rooms import JOBS as ROOM_JOBS

    jobs = {**JOBS, **ROOM_JOBS}
    return await asyncio.wait_for(jobs[job["kind"]](job), float(job["timeout"]))


def main() -> None:
    """Serve jobs, one JSON object per line on stdin, one result line each on stdout."""
    raise_fd_limit()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = asyncio.run(run_job(json.loads(line)))
        except Exception as error:  # reported to the harness, which records and prints it
            result = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
