"""`uvicorn chat.app:create_app --factory --workers N` as a real process, as README
"Scaling out" runs it: one port, several worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from tests.support.database import REPO_ROOT
from tests.support.services import free_port

START_TIMEOUT_S = 30.0


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


@contextlib.contextmanager
def run_workers(log_dir: Path, env: Mapping[str, str], *, count: int = 2) -> Iterator[Workers]:
    """Start the workers with `env` added to ours; SIGTERM them on the way out."""
    port = free_port()
    log_path = log_dir / "uvicorn.log"
    command = [
        *(sys.executable, "-m", "uvicorn", "chat.app:create_app", "--factory"),
        *("--workers", str(count), "--ws", "chat.transport:ChatWebSocketProtocol"),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Workers(process, port, log_path)
    try:
        _wait_until_every_worker_serves(server, count)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise


def _wait_until_every_worker_serves(server: Workers, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited\n{server.log_tail()}")
        log = server.log_path.read_text(errors="replace")
        if log.count("Application startup complete") >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(
        f"{count} workers did not start within {START_TIMEOUT_S}s\n{server.log_tail()}"
    )
