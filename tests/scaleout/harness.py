"""Helpers for multi-node tests: readiness polling, stored ids, and a steady posting load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.e2e.server import ChatServer
from tests.scaleout.clients import Collector


async def stored_ids(node: ChatServer) -> list[int]:
    messages = await asyncio.to_thread(node.all_messages)
    return [message["id"] for message in messages]


async def readiness(node: ChatServer) -> tuple[int, Any]:
    async with httpx.AsyncClient(base_url=node.url, timeout=5) as http:
        response = await http.get("/readyz")
        return response.status_code, response.json()


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.1)


def ready_is(node: ChatServer, status: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await readiness(node))[0] == status

    return check


class Load:
    """Posts continuously to several nodes over HTTP and from socket clients."""

    def __init__(self, nodes: list[ChatServer], senders: list[Collector]) -> None:
        self.nodes = nodes
        self.senders = senders
        self.failures: list[str] = []
        self.posted = 0
        self.posted_while_down = 0
        self.broker_down = False
        self.sent: dict[str, list[str]] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._http(node)) for node in self.nodes]
        self._tasks += [asyncio.create_task(self._socket(sender)) for sender in self.senders]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _http(self, node: ChatServer) -> None:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            n = 0
            while not self._stop.is_set():
                payload = {"body": f"http {node.port} {n}", "client_id": f"h{node.port}-{n}"}
                response = await http.post("/api/messages", json=payload)
                if response.status_code == 201:
                    self.posted += 1
                    self.posted_while_down += self.broker_down
                else:
                    self.failures.append(f"{node.url}: {response.status_code} {response.text}")
                n += 1
                await asyncio.sleep(0.02)

    async def settle(self) -> None:
        """Wait until every socket sender saw its own messages: all of them are stored."""
        for sender in self.senders:
            await sender.wait_for_client_ids(self.sent[sender.name])

    async def _socket(self, sender: Collector) -> None:
        n = 0
        sent = self.sent[sender.name] = []
        while not self._stop.is_set():
            sent.append(f"s{sender.name}-{n}")
            await sender.send(f"socket {sender.name} {n}", client_id=sent[-1])
            n += 1
            await asyncio.sleep(0.03)
