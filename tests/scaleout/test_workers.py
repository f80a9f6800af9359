"""`uvicorn --workers 2`: one port, two processes, one room (through Redis and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from tests.scaleout.clients import Collector, assert_exactly_once
from tests.scaleout.conftest import GENEROUS_LIMITS
from tests.support.database import REPO_ROOT
from tests.support.services import free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.anyio]

START_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 40


class Workers:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def worker_pids(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def worker_serving(self, client_port: int) -> int | None:
        """The pid of the worker holding the server side of the client's TCP connection."""
        for pid in self.worker_pids():
            for connection in psutil.Process(pid).net_connections(kind="tcp"):
                if connection.raddr and connection.raddr.port == client_port:
                    return pid
        return None

    def stored_ids(self) -> list[int]:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            page = http.get("/api/messages", params={"limit": 200}).json()
        return [message["id"] for message in page["messages"]]

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture
def workers(tmp_path: Path, pg_url: str, redis_url: str, channel: str) -> Iterator[Workers]:
    port = free_port()
    env = {
        **os.environ,
        "CHAT_DATABASE_URL": pg_url,
        "CHAT_BROADCAST_URL": redis_url,
        "CHAT_BROADCAST_CHANNEL": channel,
        **GENEROUS_LIMITS,
    }
    log_path = tmp_path / "uvicorn.log"
    command = [
        *(sys.executable, "-m", "uvicorn", "chat.app:create_app", "--factory"),
        *("--workers", "2", "--ws", "chat.transport:ChatWebSocketProtocol"),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Workers(process, port, log_path)
    try:
        _wait_until_both_workers_serve(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise


def _wait_until_both_workers_serve(server: Workers) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited\n{server.log_tail()}")
        if server.log_path.read_text(errors="replace").count("Application startup complete") >= 2:
            return
        time.sleep(0.1)
    raise TimeoutError(f"two workers did not start within {START_TIMEOUT_S}s\n{server.log_tail()}")


async def test_two_workers_serve_the_page_and_share_one_room(workers: Workers) -> None:
    async with httpx.AsyncClient(base_url=workers.url, timeout=5) as http:
        for _ in range(4):
            page = await http.get("/")
            assert page.status_code == 200 and "chat.js" in page.text
            assert (await http.get("/static/chat.js")).status_code == 200
            assert (await http.get("/readyz")).json()["checks"]["broadcast"] is True

    async with AsyncExitStack() as stack:
        # Open sockets until both workers hold at least one; the kernel picks the worker.
        by_worker: dict[int, list[Collector]] = {}
        for n in range(MAX_CONNECTIONS):
            client = await stack.enter_async_context(Collector(f"c{n}", workers.url))
            pid = await asyncio.to_thread(workers.worker_serving, client.local_port)
            assert pid is not None, "no worker holds this connection"
            by_worker.setdefault(pid, []).append(client)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, f"every connection went to one worker: {by_worker.keys()}"
        clients = [client for group in by_worker.values() for client in group]
        senders = [group[0] for group in by_worker.values()]

        sent = []
        for n in range(10):
            for sender in senders:
                sent.append(f"{sender.name}-{n}")
                await sender.send(f"from {sender.name}", client_id=sent[-1])
        for client in clients:
            await client.wait_for_client_ids(sent)
        stored = await asyncio.to_thread(workers.stored_ids)
        assert len(stored) == len(sent)
        await asyncio.sleep(0.3)
        assert_exactly_once(clients, stored)
