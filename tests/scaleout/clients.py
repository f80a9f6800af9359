"""Socket clients that record every frame they receive, with bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

DELIVERY_TIMEOUT_S = 20.0


class Collector:
    """One `/chatsocket` connection whose reader task records every message it is sent."""

    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self.base_url = base_url
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.closed: ConnectionClosed | None = None
        self._connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        ws_url = self.base_url.replace("http://", "ws://") + "/chatsocket"
        self._connection = await connect(
            ws_url, origin=Origin(self.base_url), open_timeout=5, close_timeout=2, proxy=None
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self._connection is not None
        try:
            async for raw in self._connection:
                payload = json.loads(raw)
                if payload.get("type") == "message":
                    self.messages.append(payload)
                else:
                    self.errors.append(payload)
        except ConnectionClosed as closed:
            self.closed = closed

    async def send(self, body: str, *, client_id: str) -> None:
        assert self._connection is not None
        payload = {"body": body, "client_id": client_id}
        await self._connection.send(json.dumps(payload, ensure_ascii=False))

    @property
    def local_port(self) -> int:
        assert self._connection is not None
        port: int = self._connection.local_address[1]
        return port

    @property
    def ids(self) -> list[int]:
        return [message["id"] for message in self.messages]

    def duplicates(self) -> list[int]:
        return sorted(i for i, n in Counter(self.ids).items() if n > 1)

    def missing(self, expected: Iterable[int]) -> list[int]:
        return sorted(set(expected) - set(self.ids))

    def client_ids(self) -> set[str]:
        return {m["client_id"] for m in self.messages if m.get("client_id")}

    async def wait_for_ids(
        self, expected: Iterable[int], within: float = DELIVERY_TIMEOUT_S
    ) -> None:
        wanted = list(expected)
        await _wait(lambda: not self.missing(wanted), within)

    async def wait_for_client_ids(
        self, expected: Iterable[str], within: float = DELIVERY_TIMEOUT_S
    ) -> None:
        wanted = set(expected)
        await _wait(lambda: wanted <= self.client_ids(), within)


async def _wait(condition: Callable[[], bool], within: float) -> None:
    """Poll until `condition()` holds or `within` seconds pass; the caller asserts afterwards."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.05)


def assert_exactly_once(collectors: Iterable[Collector], expected: Iterable[int]) -> None:
    wanted = sorted(set(expected))
    problems = []
    for collector in collectors:
        missing = collector.missing(wanted)
        duplicates = collector.duplicates()
        unexpected = sorted(set(collector.ids) - set(wanted))
        if missing or duplicates or unexpected or collector.errors:
            problems.append(
                f"{collector.name}: missing {missing[:20]} ({len(missing)}), "
                f"duplicates {duplicates[:20]}, unexpected {unexpected[:20]}, "
                f"errors {collector.errors[:3]}"
            )
    assert not problems, "\n".join(problems)
