"""A real `python -m chat` process on a free port, for the end-to-end and fault tests.

It can be stopped (SIGTERM), killed (SIGKILL) and started again on the same port and database,
which is how the reconnect tests take the server away under an open page and the fault tests
crash it mid-stream. Its stdout and stderr go to one log file the tests read. The HTTP helpers
seed and inspect what was stored.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: on a loaded 2-core machine importing the server alone has taken 15 s.
START_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerError(RuntimeError):
    """The chat server did not start, stop or answer as expected; the message has its log."""


class ChatServer:
    """One `python -m chat` process that can be stopped and started on the same port and db."""

    def __init__(
        self,
        *,
        workdir: Path,
        port: int,
        extra_env: dict[str, str] | None = None,
        database_path: Path | None = None,
        name: str = "server",
        extra_args: Sequence[str] = (),
    ):
        self.workdir = workdir
        self.extra_args = tuple(extra_args)  # command-line options after --host and --port
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/chatsocket"
        self.database_path = database_path or workdir / "chat.db"
        self.database_url = f"sqlite+aiosqlite:///{self.database_path}"
        self.log_path = workdir / f"{name}.log"
        self.env = {
            **os.environ,
            "CHAT_DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",
            # The tests seed history through the API from one address faster than a person.
            "CHAT_POST_RATE": "1000",
            "CHAT_POST_BURST": "100000",
            **(extra_env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    # ---- lifecycle ----

    def migrate(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(
                f"alembic upgrade head failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def start(self) -> None:
        self.launch()
        self.wait_healthy()

    def launch(self) -> None:
        """Start the process without waiting for it to answer (see wait_healthy)."""
        if self.running:
            raise ServerError("the server is already running")
        self._starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n---- start #{self._starts} ----\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chat",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.extra_args,
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
                raise ServerError(
                    f"the server ignored SIGTERM for {STOP_TIMEOUT_S}s and was killed\n"
                    f"{self.log_tail()}"
                ) from None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        process = self._process
        if process is None:
            return
        self._process = None
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> tuple[int, float]:
        """SIGTERM and wait for the exit: (exit code, seconds it took). Kills after `timeout`."""
        process = self._process
        if process is None:
            raise ServerError("the server is not running")
        self._process = None
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
            raise ServerError(
                f"the server ignored SIGTERM for {timeout}s and was killed\n{self.log_tail()}"
            ) from None
        return code, time.monotonic() - started

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError("the server is not running")
        return self._process.pid

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise ServerError(
                    f"the server exited with {code} while starting\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1.0) as response:
                    if response.status == 200:
                        return
                    last_error = f"status {response.status}"
            except (OSError, urllib.error.URLError) as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        self.stop()
        raise ServerError(
            f"GET /healthz did not answer 200 within {START_TIMEOUT_S}s ({last_error})\n"
            f"{self.log_tail()}"
        )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "server log:\n" + "\n".join(text.splitlines()[-lines:])

    # ---- the HTTP API, for seeding and checking what was stored ----

    def request(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read()
            try:
                return exc.code, json.loads(body)
            except ValueError:
                return exc.code, body.decode(errors="replace")

    def post_message(
        self, body: str, *, author: str | None = None, client_id: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"body": body}
        if author is not None:
            payload["author"] = author
        if client_id is not None:
            payload["client_id"] = client_id
        status, answer = self.request("POST", "/api/messages", payload)
        if status not in (200, 201):
            raise ServerError(f"POST /api/messages {payload!r} answered {status}: {answer!r}")
        message: dict[str, Any] = answer
        return message

    def messages_page(self, **params: int) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        status, answer = self.request("GET", f"/api/messages?{query}")
        if status != 200:
            raise ServerError(f"GET /api/messages?{query} answered {status}: {answer!r}")
        page: dict[str, Any] = answer
        return page

    def all_messages(self) -> list[dict[str, Any]]:
        """Every stored message, oldest first, walking `after=` pages."""
        messages: list[dict[str, Any]] = []
        after = 0
        for _ in range(1000):
            page = self.messages_page(after=after, limit=200)
            messages.extend(page["messages"])
            if not page["has_newer"] or not page["messages"]:
                return messages
            after = page["newer_cursor"]
        raise ServerError("GET /api/messages?after= never reached the end")


def wait_until_ready(
    base_url: str, process: subprocess.Popen[str], *, timeout: float = START_TIMEOUT_S
) -> None:
    """Poll `/readyz` of a server process until it answers 200; fail with its output if the
    process exits first or the bound passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise ServerError(f"the process exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1.0) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    raise ServerError(f"{base_url} was not ready within {timeout}s")
