"""Clients that behave like the page: every message has a client_id, stays in an outbox until
the server acknowledges it, and is resent with the same client_id after a reconnect.

They survive the server going away (they reconnect with a short backoff) and write down in a
shared `Ledger` what was acknowledged, with which id, and every error and close code seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

logger = logging.getLogger(__name__)

RECONNECT_DELAY_S = 0.1
RECV_TIMEOUT_S = 10.0
CONNECTION_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, EOFError)


@dataclass
class Ledger:
    """What the clients of one test sent and saw, keyed by client_id."""

    sent: set[str] = field(default_factory=set)
    acked: dict[str, int] = field(default_factory=dict)  # client_id -> id the server gave
    errors: Counter[str] = field(default_factory=Counter)  # error codes / HTTP statuses seen
    close_codes: list[int | None] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)  # first send, time.monotonic()
    connects: int = 0
    resends: int = 0  # messages sent again after a reconnect or an error, same client_id

    def acknowledge(self, client_id: str, message_id: int) -> None:
        earlier = self.acked.setdefault(client_id, message_id)
        if earlier != message_id:
            raise AssertionError(
                f"{client_id!r} acknowledged as id {earlier} and later as id {message_id}"
            )


def ws_connect(url: str, **kwargs: Any) -> connect:
    """A loopback connection: no proxy, no compression, bounded handshake and close."""
    options: dict[str, Any] = {
        "proxy": None,
        "compression": None,
        "open_timeout": 5,
        "close_timeout": 2,
        "max_size": 1 << 20,
    }
    return connect(url, **(options | kwargs))


class SocketSender:
    """Streams messages over /chatsocket, at most `window` unacknowledged at a time."""

    def __init__(
        self,
        name: str,
        url: str,
        ledger: Ledger,
        *,
        window: int = 8,
        limit: int | None = None,
        body_size: int = 40,
    ) -> None:
        self.name = name
        self.url = url
        self.ledger = ledger
        self.window = window
        self.limit = limit
        self.body_size = body_size
        self.outbox: dict[str, str] = {}  # client_id -> frame, oldest first
        self.produced = 0
        self.stopping = False  # produce no more; finish when the outbox is empty

    @property
    def done(self) -> bool:
        exhausted = self.stopping or (self.limit is not None and self.produced >= self.limit)
        return exhausted and not self.outbox

    async def run(self) -> None:
        while not self.done:
            try:
                async with ws_connect(self.url) as websocket:
                    self.ledger.connects += 1
                    await self._converse(websocket)
            except ConnectionClosed as closed:
                self.ledger.close_codes.append(closed.rcvd.code if closed.rcvd else None)
            except CONNECTION_ERRORS:
                pass
            if not self.done:
                await asyncio.sleep(RECONNECT_DELAY_S)  # reconnect backoff, as the page does

    async def _converse(self, websocket: ClientConnection) -> None:
        in_flight: set[str] = set()  # sent on this connection, not yet answered
        while not self.done:
            await self._top_up(websocket, in_flight)
            async with asyncio.timeout(RECV_TIMEOUT_S):
                raw = await websocket.recv()
            # Everyone's broadcasts arrive here; parse only what may answer this client.
            if f'"{self.name}-' in raw or '"error"' in raw:
                self._receive(json.loads(raw), in_flight)

    async def _top_up(self, websocket: ClientConnection, in_flight: set[str]) -> None:
        # Resend what this connection has not carried yet (the outbox after a reconnect)...
        for client_id, frame in list(self.outbox.items()):
            if client_id not in in_flight:
                in_flight.add(client_id)
                self.ledger.resends += 1
                await websocket.send(frame)
        # ...then produce new messages up to the window.
        while len(self.outbox) < self.window and not self._exhausted:
            self.produced += 1
            client_id = f"{self.name}-{self.produced}"
            body = f"{client_id} " + "x" * max(0, self.body_size - len(client_id) - 1)
            frame = json.dumps({"body": body, "author": self.name, "client_id": client_id})
            self.outbox[client_id] = frame
            self.ledger.sent.add(client_id)
            self.ledger.sent_at.setdefault(client_id, time.monotonic())
            in_flight.add(client_id)
            await websocket.send(frame)

    @property
    def _exhausted(self) -> bool:
        return self.stopping or (self.limit is not None and self.produced >= self.limit)

    def _receive(self, frame: dict[str, Any], in_flight: set[str]) -> None:
        client_id = frame.get("client_id")
        if frame.get("type") == "error":
            self.ledger.errors[frame.get("error", "?")] += 1
            if client_id in self.outbox:
                in_flight.discard(client_id)  # not stored: resend on the next top-up
            return
        if client_id in self.outbox:
            self.ledger.acknowledge(client_id, int(frame["id"]))
            del self.outbox[client_id]
            in_flight.discard(client_id)


class HttpPoster:
    """Posts messages one at a time; a message counts as acknowledged on 201 or 200."""

    def __init__(self, name: str, url: str, ledger: Ledger, *, limit: int | None = None) -> None:
        self.name = name
        self.url = url
        self.ledger = ledger
        self.limit = limit
        self.produced = 0
        self.pending: str | None = None
        self.stopping = False

    @property
    def done(self) -> bool:
        exhausted = self.stopping or (self.limit is not None and self.produced >= self.limit)
        return exhausted and self.pending is None

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0, trust_env=False) as client:
            while not self.done:
                if self.pending is None:
                    self.produced += 1
                    self.pending = f"{self.name}-{self.produced}"
                    self.ledger.sent.add(self.pending)
                    self.ledger.sent_at.setdefault(self.pending, time.monotonic())
                if not await self._post(client, self.pending):
                    await asyncio.sleep(RECONNECT_DELAY_S)

    async def _post(self, client: httpx.AsyncClient, client_id: str) -> bool:
        payload = {"body": f"{client_id} via POST", "author": self.name, "client_id": client_id}
        try:
            response = await client.post("/api/messages", json=payload)
        except httpx.TransportError:
            self.ledger.resends += 1  # the next attempt resends the same client_id
            return False
        if response.status_code in (200, 201):
            self.ledger.acknowledge(client_id, int(response.json()["id"]))
            self.pending = None
            return True
        self.ledger.errors[f"http {response.status_code}"] += 1
        return False


class Observer:
    """Reads every broadcast and remembers the ids, reconnecting when the server goes away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[int] = []
        self.close_codes: list[int | None] = []
        self.connected = asyncio.Event()

    async def run_once(self) -> None:
        """One connection, until the server closes it."""
        try:
            async with ws_connect(self.url) as websocket:
                self.connected.set()
                async for raw in websocket:
                    frame = json.loads(raw)
                    if frame.get("type") == "message":
                        self.ids.append(int(frame["id"]))
        except ConnectionClosed as closed:
            self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
        else:
            # `async for` ends quietly on a normal close; the code is still on the connection.
            self.close_codes.append(websocket.close_code)
        finally:
            self.connected.clear()


async def wait_until(predicate: Any, seconds: float, what: str, interval: float = 0.02) -> None:
    """Poll `predicate()` until it is true, failing with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(interval)


async def finish(tasks: list[asyncio.Task[None]], seconds: float) -> None:
    """Wait for client tasks; cancel the rest after `seconds` and re-raise any failure."""
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for task in done:
        task.result()
    if pending:
        raise AssertionError(f"{len(pending)} client(s) did not finish within {seconds}s")
