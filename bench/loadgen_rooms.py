"""Load generator jobs for many rooms, typing and presence churn (``bench.loadgen`` runs them).

* ``rooms``: ``clients`` sockets in ``len(rooms)`` rooms of equal size; every socket sends
  ``{"type": "subscribe", "room"}`` and the job waits for every ``subscribed``; then, ``repeats``
  times on the same sockets, ``rate`` messages per second in total, round-robin over the rooms,
  each from a member of its room (turn by turn), paced without waiting for echoes. Each message
  is expected by every member of its room, its sender included.
* ``typing``: signed-in sockets in one room; three phases on the same sockets: ``typers``
  sockets sending ``{"type": "typing", "room"}`` every 2-3 s (uniformly drawn), ``rate``
  messages per second from ``senders`` sockets, and quiet; the server's CPU in each.
* ``churn``: signed-in base sockets stay open; the first ``bystanders`` watch the presence of
  ``watch`` and get ``rate`` messages per second in ``room``; ``repeats`` times, their latency
  without churn, then with ``churn_rate`` sockets per second of ``churn_tokens`` opening and
  closing again ``lifetime`` seconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from typing import Any

from bench.loadgen import (
    CONNECT_TIMEOUT,
    NS,
    Clients,
    CpuMeter,
    FanOut,
    Phase,
    close_clients,
    open_clients,
    phase_result,
    run_phase,
)
from bench.wsclient import WsClient, open_connection

DRAIN_QUIET = 2.0
SUBSCRIBE_TIMEOUT = 120.0
TYPING_PERIOD = 6.0  # seconds


# --------------------------------------------------------------------------- rooms


class RoomsFanOut(FanOut):
    """FanOut over rooms: socket ``i`` is in room ``i % rooms``; no acknowledgements."""

    def __init__(self, clients: Clients, rooms: list[str]) -> None:
        super().__init__(clients, senders=0, window=0)
        self.rooms = rooms
        self.size = len(clients.sockets) // len(rooms)
        self.subscribed = 0
        self.all_subscribed = asyncio.Event()
        self.phase = Phase(prefix="-", clients=self.size)

    def new_phase(self, prefix: str) -> Phase:
        phase = super().new_phase(prefix)
        phase.clients = self.size  # a message goes to its room's members only
        return phase

    def _on_text(self, client: WsClient, data: bytes, index: int) -> None:
        if b'"subscribed"' in data:
            self.subscribed += 1
            if self.subscribed >= len(self.clients.sockets):
                self.all_subscribed.set()
            return
        super()._on_text(client, data, index)

    def _on_error(self, message: dict[str, Any], index: int) -> None:
        """An error naming one of this phase's client_ids refused that message."""
        phase = self.phase
        phase.errors[str(message.get("error"))] += 1
        if str(message.get("client_id") or "").startswith(phase.prefix):
            phase.rejected += 1
            phase.check_done()

    async def subscribe_all(self, *, within: float) -> None:
        for client in self.clients.sockets:
            room = self.rooms[client.index % len(self.rooms)]
            client.send_text(json.dumps({"type": "subscribe", "room": room}).encode())
        async with asyncio.timeout(within):
            await self.all_subscribed.wait()

    def send_in_room(self, room: int, turn: int) -> None:
        """Message ``turn`` of ``room``, from its members in turn; the token names the room."""
        phase = self.phase
        sender = self.clients.sockets[room + (turn % self.size) * len(self.rooms)]
        client_id = f"{phase.prefix}{room}:{turn}"
        frame = {
            "body": f"{client_id}:{time.monotonic_ns()}",
            "room": self.rooms[room],
            "client_id": client_id,
        }
        phase.sent += 1
        sender.send_text(json.dumps(frame).encode())

    async def paced(self, *, rate: float, until: int) -> None:
        """``rate`` messages per second over every room in turn, on schedule (late ones go at
        once, so a slow moment is followed by a burst, as real traffic would be)."""
        start = time.monotonic()
        count = 0
        rooms = len(self.rooms)
        while True:
            due = start + count / rate
            if due * NS >= until:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send_in_room(count % rooms, count // rooms)
            count += 1


async def rooms_job(job: dict[str, Any]) -> dict[str, Any]:
    rooms: list[str] = list(job["rooms"])
    wanted = int(job["clients"]) // len(rooms) * len(rooms)
    started = time.monotonic()
    clients = await open_clients(job["url"], wanted, job.get("compression"))
    result: dict[str, Any] = {
        "connected": len(clients.sockets),
        "connect_errors": dict(clients.connect_errors),
        "connect_s": time.monotonic() - started,
    }
    try:
        if len(clients.sockets) < wanted:
            result["error"] = f"{len(clients.sockets)} of {wanted} sockets connected"
            return result
        fanout = RoomsFanOut(clients, rooms)
        started = time.monotonic()
        try:
            await fanout.subscribe_all(within=SUBSCRIBE_TIMEOUT)
        except TimeoutError:
            result["error"] = f"{fanout.subscribed} of {wanted} subscriptions confirmed in time"
            return result
        result["subscribe_s"] = time.monotonic() - started
        result["phases"] = [
            await _rooms_phase(fanout, job, prefix=f"{job['run_id']}r{number}:")
            for number in range(int(job.get("repeats", 1)))
        ]
    finally:
        result["disconnects"] = dict(clients.closes)
        await close_clients(clients)
    return result


async def _rooms_phase(fanout: RoomsFanOut, job: dict[str, Any], *, prefix: str) -> dict[str, Any]:
    """One measurement on the open sockets: warm up, measure, stop sending, drain."""
    phase = fanout.new_phase(prefix)
    warmup, duration = float(job["warmup"]), float(job["duration"])
    phase.measure_from = time.monotonic_ns() + int(warmup * NS)
    phase.measure_to = phase.measure_from + int(duration * NS)
    pacing = asyncio.ensure_future(fanout.paced(rate=float(job["rate"]), until=phase.measure_to))
    meter = CpuMeter(job.get("server_pid"))
    await asyncio.sleep(warmup)
    meter.start()
    await asyncio.sleep(max(phase.measure_to - time.monotonic_ns(), 0) / NS)
    cpu = meter.stop()
    await pacing
    await fanout.drain(quiet=DRAIN_QUIET, limit=float(job["drain"]))
    outcome = phase_result(phase, seconds=duration, cpu=cpu)
    server_cpu_s = cpu["server_cpu_pct"] / 100 * duration
    outcome["server_cpu_us_per_delivery"] = (
        1e6 * server_cpu_s / phase.deliveries_in_window
        if phase.deliveries_in_window
        else float("nan")
    )
    return {"rate": job["rate"], **outcome}


# --------------------------------------------------------------------------- typing


class TypingCounter:
    """Counts typing frames; everything else goes on to the fan-out's own handler."""

    def __init__(self, fanout: FanOut) -> None:
        self.fanout = fanout
        self.received = 0
        for client in fanout.clients.sockets:
            client.on_text = self._on_text

    def _on_text(self, client: WsClient, data: bytes, index: int) -> None:
        if b'"type":"typing"' in data:
            self.received += 1
        else:
            self.fanout._on_text(client, data, index)


async def _typist(client: WsClient, room: str, *, until: float, rng: random.Random) -> int:
    """Say "typing" every 2-3 s (the first time within 3 s) until ``until``; how many times."""
    frame = json.dumps({"type": "typing", "room": room}).encode()
    sent = 0
    await asyncio.sleep(rng.uniform(0.0, 3.0))
    while time.monotonic() < until:
        client.send_text(frame)
        sent += 1
        await asyncio.sleep(rng.uniform(2.0, 3.0))
    return sent


async def _quiet_or_typing(
    counter: TypingCounter, job: dict[str, Any], *, typers: int
) -> dict[str, Any]:
    """``typers`` sockets typing (none: quiet); the server's CPU once every typist has begun."""
    # Typists start within 3 s, and with refreshes every 2-3 s coalesced to one broadcast per
    # 3 s, each broadcasts every other refresh (every 4-6 s): measure from the steady state,
    # over at least one such period.
    duration = max(float(job["duration"]), TYPING_PERIOD if typers else 0.0)
    warmup = max(float(job["warmup"]), TYPING_PERIOD if typers else 0.0)
    counter.fanout.new_phase(f"{job['run_id']}t{typers}:")
    rng = random.Random(typers)
    until = time.monotonic() + warmup + duration
    sockets = counter.fanout.clients.sockets[:typers]
    typing = asyncio.gather(
        *(_typist(client, job["room"], until=until, rng=rng) for client in sockets)
    )
    meter = CpuMeter(job.get("server_pid"))
    await asyncio.sleep(warmup)
    before = counter.received
    meter.start()
    await asyncio.sleep(duration)
    cpu = meter.stop()
    received = counter.received - before
    sent = sum(await typing)
    return {
        "typing_sent": sent,
        "typing_delivered_per_s": received / duration,
        "errors": dict(counter.fanout.phase.errors),
        **cpu,
    }


async def typing_job(job: dict[str, Any]) -> dict[str, Any]:
    tokens = job["tokens"]
    clients = await open_clients(job["url"], int(job["clients"]), None, tokens)
    result: dict[str, Any] = {
        "connected": len(clients.sockets),
        "connect_errors": dict(clients.connect_errors),
    }
    try:
        if len(clients.sockets) < int(job["clients"]):
            result["error"] = f"{len(clients.sockets)} of {job['clients']} sockets connected"
            return result
        fanout = FanOut(clients, int(job["senders"]), 0)
        counter = TypingCounter(fanout)
        # Opening a thousand signed-in sockets leaves work behind (presence): let it pass.
        await asyncio.sleep(float(job.get("settle", 3.0)))
        typing = await _quiet_or_typing(counter, job, typers=int(job["typers"]))
        messages = await run_phase(
            fanout, job, prefix=f"{job['run_id']}m:", rate=float(job["rate"])
        )
        quiet = await _quiet_or_typing(counter, job, typers=0)
        result["phases"] = {"quiet": quiet, "typing": typing, "messages": messages}
    finally:
        result["disconnects"] = dict(clients.closes)
        with contextlib.suppress(Exception):
            await close_clients(clients)
    return result


# --------------------------------------------------------------------------- presence churn


class Churn:
    """``rate`` sockets opened per second with the next token of ``tokens``, each closed again
    ``lifetime`` seconds later: as many connects as disconnects per second, once it runs."""

    def __init__(self, url: str, tokens: list[str], *, rate: float, lifetime: float) -> None:
        self.url = url
        self.tokens = tokens
        self.rate = rate
        self.lifetime = lifetime
        self.opened = 0
        self.closed = 0
        self.failures: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def _one(self, number: int) -> None:
        token = self.tokens[number % len(self.tokens)]
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                client = await open_connection(
                    self.url,
                    index=number,
                    compression=None,
                    headers=(("Authorization", f"Bearer {token}"),),
                )
        except (OSError, TimeoutError) as exc:
            self.failures[type(exc).__name__] += 1
            return
        self.opened += 1
        await asyncio.sleep(self.lifetime)
        await client.close()
        self.closed += 1

    async def run(self, *, until: float) -> None:
        """Open sockets on schedule until ``until`` (monotonic s), then let the last ones end."""
        start = time.monotonic()
        number = 0
        while (due := start + number / self.rate) < until:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._one(number))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            number += 1
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.lifetime + CONNECT_TIMEOUT)


async def _watch_all(clients: list[WsClient], room: str, *, within: float) -> int:
    """Every bystander watches its room's presence; how many snapshots came back in time."""
    snapshots = 0
    done = asyncio.Event()
    previous = {client: client.on_text for client in clients}

    def on_text(client: WsClient, data: bytes, index: int) -> None:
        nonlocal snapshots
        if b'"presence_snapshot"' in data:
            snapshots += 1
            if snapshots >= len(clients):
                done.set()

    for client in clients:
        client.on_text = on_text
        client.send_text(json.dumps({"type": "watch", "room": room}).encode())
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await done.wait()
    for client, handler in previous.items():
        client.on_text = handler
    return snapshots


async def churn_job(job: dict[str, Any]) -> dict[str, Any]:
    """Base sockets stay open; the first ``bystanders`` of them share a room that gets ``rate``
    messages per second, measured without and then with ``churn_rate`` connects and
    disconnects per second of other accounts."""
    started = time.monotonic()
    clients = await open_clients(job["url"], int(job["clients"]), None, job["tokens"])
    result: dict[str, Any] = {
        "connected": len(clients.sockets),
        "connect_errors": dict(clients.connect_errors),
        "connect_s": time.monotonic() - started,
    }
    try:
        if len(clients.sockets) < int(job["clients"]):
            result["error"] = f"{len(clients.sockets)} of {job['clients']} sockets connected"
            return result
        bystanders = Clients(sockets=clients.sockets[: int(job["bystanders"])])
        result["watching"] = await _watch_all(
            bystanders.sockets, job["watch"], within=SUBSCRIBE_TIMEOUT
        )
        fanout = FanOut(bystanders, int(job["senders"]), 0)
        fanout.room = job["room"]
        result["phases"] = []
        for number in range(int(job.get("repeats", 1))):
            quiet = await run_phase(
                fanout, job, prefix=f"{job['run_id']}q{number}:", rate=float(job["rate"])
            )
            churn = await _churn_phase(fanout, job, prefix=f"{job['run_id']}c{number}:")
            result["phases"].append({"quiet": quiet, "churn": churn})
    finally:
        result["disconnects"] = dict(clients.closes)
        with contextlib.suppress(Exception):
            await close_clients(clients)
    return result


async def _churn_phase(fanout: FanOut, job: dict[str, Any], *, prefix: str) -> dict[str, Any]:
    """The bystanders' fan-out while sockets come and go: churn starts a socket lifetime
    before the phase (so sockets close as fast as they open) and lasts through its
    measurement."""
    churn = Churn(
        job["url"],
        job["churn_tokens"],
        rate=float(job["churn_rate"]),
        lifetime=float(job["lifetime"]),
    )
    lead = float(job["lifetime"])
    seconds = lead + float(job["warmup"]) + float(job["duration"])
    churning = asyncio.ensure_future(churn.run(until=time.monotonic() + seconds))
    await asyncio.sleep(lead)
    busy = await run_phase(fanout, job, prefix=prefix, rate=float(job["rate"]))
    await churning
    busy["churn_connects_per_s"] = churn.opened / seconds
    busy["churn_failures"] = sum(churn.failures.values())
    busy["churn_failure_kinds"] = dict(churn.failures)
    return busy


JOBS = {"rooms": rooms_job, "typing": typing_job, "churn": churn_job}
