"""Servers under test as real processes on loopback: start, wait until ready, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
SERVER_NAMES = ("chat", "tornado", "naive", "ceiling")
# Chat with GET /metrics and every metric on: the column that prices the metrics (chat-metrics /
# chat). Not in the default run; pick it with --servers.
CHAT_VARIANTS = {"chat": {}, "chat-metrics": {"CHAT_METRICS": "true"}, "chat-base": {}}
# chat-base is chat run from another work tree (--base-tree, e.g. an older revision checked
# out with `git worktree add`): a regression check in the same run as chat.
SERVER_CHOICES = (*SERVER_NAMES, "chat-metrics", "chat-base")
PEER_MODULES = {
    "tornado": "bench.peers.tornado_demo",
    "naive": "bench.peers.naive_starlette",
    "ceiling": "bench.peers.websockets_ceiling",
    # naive with a dict of rooms: the `rooms` scenario's peer, not a --servers choice.
    "naive-rooms": "bench.peers.naive_rooms",
}
LOG_LEVEL = "warning"


class ServerError(RuntimeError):
    """A server under test did not start or died."""


@dataclass
class Server:
    """One running server process and the files that belong to it."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    db_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/chatsocket"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_findings(self, keep: int = 5) -> dict[str, object]:
        """Counts of warnings, errors and tracebacks in the server's log, with a few examples."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        marks = ("Traceback", "ERROR", "CRITICAL", "WARNING", "Exception")
        flagged = [line for line in lines if any(mark in line for mark in marks)]
        counts = {mark: sum(mark in line for line in flagged) for mark in marks}
        examples = list(dict.fromkeys(line.strip()[:300] for line in flagged))[:keep]
        return {"lines": len(lines), **{k: v for k, v in counts.items() if v}, "examples": examples}

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServerError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not gone within a few seconds."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def chat_env(db_path: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["CHAT_DATABASE_URL"] = f"sqlite+aiosqlite:///{db_path}"
    env["CHAT_LOG_LEVEL"] = LOG_LEVEL
    env.update(extra or {})
    return env


def migrate(db_path: Path, *, tree: Path = REPO_ROOT) -> None:
    """Create the chat schema in ``db_path`` with Alembic (the migrations of the work tree
    ``tree``), as an operator would."""
    completed = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=tree,
        env=chat_env(db_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise ServerError(f"alembic upgrade head failed:\n{completed.stderr[-3000:]}")


def chat_available() -> bool:
    completed = subprocess.run(
        [sys.executable, "-m", "chat", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return completed.returncode == 0


def start_server(
    name: str,
    *,
    scratch: Path,
    db_path: Path | None = None,
    chat_extra_env: Mapping[str, str] | None = None,
    base_tree: Path | None = None,
) -> Server:
    """Start ``name`` on a free port; for chat, migrate a fresh database unless one is given.
    ``chat-base`` runs the chat of ``base_tree`` (``python -m chat`` imports the package of its
    working directory first)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    port = free_port()
    env = dict(os.environ)
    tree = REPO_ROOT
    if name == "chat-base":
        if base_tree is None:
            raise ServerError("chat-base needs --base-tree (a work tree of another revision)")
        tree = base_tree
    if name in CHAT_VARIANTS:
        if db_path is None:
            db_path = workdir / "chat.db"
            migrate(db_path, tree=tree)
        env = chat_env(db_path, {**(chat_extra_env or {}), **CHAT_VARIANTS[name]})
        command = [sys.executable, "-m", "chat", "--host", HOST, "--port", str(port)]
    elif name in PEER_MODULES:
        module = PEER_MODULES[name]
        command = [sys.executable, "-m", module, "--host", HOST, "--port", str(port)]
        command += ["--log-level", LOG_LEVEL]
    else:
        raise ServerError(f"unknown server {name!r}; choose from {', '.join(SERVER_CHOICES)}")
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, port, process, workdir, log_path, db_path)
    try:
        wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Server) -> None:
    """Poll until the server answers: ``GET /healthz`` 200 for chat, a TCP accept for peers."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        server.check_alive()
        if _answers(server):
            return
        time.sleep(0.05)
    raise ServerError(f"{server.name} not ready after {READY_TIMEOUT} s:\n{server.log_tail()}")


def _answers(server: Server) -> bool:
    if server.name in CHAT_VARIANTS:
        # chat-metrics must really have its metrics on, or its column would measure nothing.
        paths = ("/healthz", "/metrics") if server.name == "chat-metrics" else ("/healthz",)
        try:
            for path in paths:
                url = f"http://{HOST}:{server.port}{path}"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status != 200:
                        return False
        except (urllib.error.URLError, OSError):
            return False
        return True
    try:
        with socket.create_connection((HOST, server.port), timeout=1):
            return True
    except OSError:
        return False
