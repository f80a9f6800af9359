"""Fault tests: real `python -m chat` processes on temporary SQLite files, killed, stopped,
locked out of their database and fed hostile peers. Every fixture here is loopback-only and
uses free ports."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.clients import Ledger
from tests.support.process import ChatServer, free_port

# The fault tests stream far faster than a person types; the abuse limits are not under test.
GENEROUS_LIMITS = {
    "CHAT_SOCKET_RATE": "1000000",
    "CHAT_SOCKET_BURST": "1000000",
    "CHAT_POST_RATE": "1000000",
    "CHAT_POST_BURST": "1000000",
}

ProcessFactory = Callable[..., ChatServer]

# Thousands of requests per test: keep httpx's per-request INFO lines out of the figures.
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture
def make_process(tmp_path: Path) -> Iterator[ProcessFactory]:
    """Start `python -m chat` processes; keyword arguments become CHAT_* variables.

    All processes of one test share `tmp_path / "chat.db"` unless given `database_path`; the
    file is migrated by `python -m alembic upgrade head` the first time it is used.
    """
    started: list[ChatServer] = []

    def factory(
        name: str = "server", *, database_path: Path | None = None, start: bool = True, **env: str
    ) -> ChatServer:
        database_path = database_path or tmp_path / "chat.db"
        server = ChatServer(
            workdir=tmp_path,
            port=free_port(),
            database_path=database_path,
            name=name,
            extra_env={**GENEROUS_LIMITS, **{f"CHAT_{k.upper()}": v for k, v in env.items()}},
        )
        if not database_path.exists():
            server.migrate()
        started.append(server)
        if start:
            server.start()
        return server

    yield factory
    for server in reversed(started):
        if server.running:
            server.kill()


def stored_messages(database_path: Path) -> list[tuple[int, str | None, str]]:
    """(id, client_id, body) of every stored row, read with the sqlite3 module."""
    with sqlite3.connect(database_path, timeout=10) as connection:
        rows = connection.execute("SELECT id, client_id, body FROM messages ORDER BY id")
        result = [(int(row[0]), row[1], str(row[2])) for row in rows]
    connection.close()
    return result


def integrity_check(database_path: Path) -> str:
    with sqlite3.connect(database_path, timeout=10) as connection:
        answer = connection.execute("PRAGMA integrity_check").fetchall()
    connection.close()
    return "; ".join(str(row[0]) for row in answer)


def log_problems(text: str) -> list[str]:
    """Lines of a server log that no fault should produce."""
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line or " ERROR " in line or " CRITICAL " in line
    ]


def assert_acknowledged_stored_once(
    ledger: Ledger, database_path: Path
) -> list[tuple[int, str | None, str]]:
    """Every acknowledged client_id is stored once, under the id it was acknowledged with."""
    rows = stored_messages(database_path)
    counts = Counter(client_id for _, client_id, _ in rows if client_id is not None)
    duplicated = {client_id: n for client_id, n in counts.items() if n > 1}
    assert not duplicated, f"client_ids stored more than once: {duplicated}"
    stored_ids = {client_id: message_id for message_id, client_id, _ in rows}
    missing = {cid: mid for cid, mid in ledger.acked.items() if cid not in stored_ids}
    assert not missing, f"acknowledged but not stored: {sorted(missing.items())[:10]}"
    moved = {
        cid: (mid, stored_ids[cid]) for cid, mid in ledger.acked.items() if mid != stored_ids[cid]
    }
    assert not moved, f"acknowledged under another id than stored: {sorted(moved.items())[:10]}"
    return rows
