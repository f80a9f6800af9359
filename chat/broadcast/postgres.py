"""PostgreSQL LISTEN/NOTIFY transport for the relay (`CHAT_BROADCAST_URL=postgresql://...`).

For deployments that have PostgreSQL and no Redis. A NOTIFY payload holds at most 8000 bytes,
so each notification carries lines of chat.broadcast.codec's format while they fit, and for a
change whose frame alone is too large its head only; the receiving relay reads those from the
database.
The listening connection is watched by asyncpg's termination callback and a `SELECT 1` whenever
it has been quiet for `heartbeat` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

import asyncpg  # type: ignore[import-untyped]

from chat.broadcast import codec
from chat.broadcast.base import Envelope
from chat.broadcast.relay import (
    DEFAULT_LIVENESS,
    BrokerUnavailable,
    Liveness,
    Received,
    Transport,
    describe,
)

logger = logging.getLogger(__name__)

# PostgreSQL refuses payloads of 8000 bytes or more; keep a margin.
MAX_PAYLOAD_BYTES = 7900
MAX_QUEUED_NOTIFICATIONS = 10_000

_LOST = object()


def asyncpg_dsn(url: str) -> str:
    """Accept the SQLAlchemy spelling too: postgresql+asyncpg://... -> postgresql://..."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class PostgresTransport(Transport):
    name = "PostgreSQL LISTEN/NOTIFY"

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        liveness: Liveness = DEFAULT_LIVENESS,
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._channel = channel
        self._liveness = liveness
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._publishing = asyncio.Lock()  # one NOTIFY at a time on the publisher
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    async def connect(self) -> None:
        await self.close()
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=MAX_QUEUED_NOTIFICATIONS)
        self._queue = queue

        def on_notify(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                # Falling this far behind is a gap: reconnect, and the replay fills it.
                queue.get_nowait()
                queue.put_nowait(_LOST)

        try:
            connection = await self._connect("listener")
        except (asyncpg.PostgresError, OSError) as error:
            raise BrokerUnavailable(f"cannot connect: {describe(error)}") from error
        self._listener = connection
        connection.add_termination_listener(lambda _connection: queue.put_nowait(_LOST))
        try:
            await connection.add_listener(self._channel, on_notify)
        except (asyncpg.PostgresError, OSError) as error:
            raise BrokerUnavailable(f"cannot LISTEN: {describe(error)}") from error

    async def _connect(self, role: str) -> asyncpg.Connection:
        # Named per process and role, so pg_stat_activity tells the nodes' connections apart.
        return await asyncpg.connect(
            self._dsn,
            timeout=self._liveness.timeout,
            server_settings={"application_name": f"chat-{role}-{os.getpid()}"},
        )

    async def receive(self) -> Sequence[Received]:
        connection = self._listener
        if connection is None:
            raise BrokerUnavailable("not listening")
        try:
            item = await asyncio.wait_for(self._queue.get(), self._liveness.heartbeat)
        except TimeoutError:
            try:
                await connection.fetchval("SELECT 1", timeout=self._liveness.dead_after)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
                raise BrokerUnavailable(f"heartbeat failed: {describe(error)}") from error
            return []
        received: list[Received] = []
        while True:
            if item is _LOST:
                raise BrokerUnavailable("the listening connection was closed")
            assert isinstance(item, str)
            received.extend(codec.decode(item))
            if self._queue.empty():
                return received
            item = self._queue.get_nowait()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        await self._notify(_payloads(envelopes))

    async def publish_line(self, line: str) -> None:
        if len(line.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"a signal of {len(line.encode())} bytes does not fit a NOTIFY")
        await self._notify([line])

    async def _notify(self, payloads: Sequence[str]) -> None:
        # The relay's publisher, presence and typing call from their own tasks, and an asyncpg
        # connection runs one query at a time: without the lock a second NOTIFY failed with
        # "another operation is in progress", and the connection was dropped under the first.
        async with self._publishing:
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await self._connect("publisher")
                for payload in payloads:
                    await self._publisher.execute(
                        "SELECT pg_notify($1, $2)", self._channel, payload
                    )
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
                publisher, self._publisher = self._publisher, None
                if publisher is not None:
                    publisher.terminate()
                raise BrokerUnavailable(f"NOTIFY failed: {describe(error)}") from error

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.terminate()  # never waits on a connection that may be dead

    async def shutdown(self) -> None:
        await self.close()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.terminate()


def _payloads(envelopes: Sequence[Envelope]) -> list[str]:
    payloads: list[str] = []
    lines: list[str] = []
    size = 0
    for envelope in envelopes:
        line = codec.line(envelope)
        if len(line.encode()) > MAX_PAYLOAD_BYTES:
            line = codec.head(envelope)  # receivers read this one from the database
        line_size = len(line.encode()) + 1
        if lines and size + line_size > MAX_PAYLOAD_BYTES:
            payloads.append("\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += line_size
    if lines:
        payloads.append("\n".join(lines))
    return payloads
