"""The `chat` command as an operator runs it: real processes, from a directory of their own."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.database import sqlite_url
from tests.support.process import free_port, wait_until_ready

TIMEOUT_S = 60


def run_chat(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory that is not the repository: nothing may depend on it."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    repo = Path(__file__).resolve().parents[2]
    return {
        **os.environ,
        # The source tree, as an installed package would be on the path (the wheel test covers
        # a real installation).
        "PYTHONPATH": str(repo),
        "CHAT_DATABASE_URL": sqlite_url(tmp_path / "data" / "chat.db"),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return directory


def test_an_unmigrated_database_is_refused_with_one_line_naming_the_command(
    elsewhere: Path, env: dict[str, str], data_dir: Path
) -> None:
    result = run_chat("--port", str(free_port()), cwd=elsewhere, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "chat migrate" in lines[0]
    assert "never migrated" in lines[0]


def test_migrate_works_from_any_directory_and_check_reports_it(
    elsewhere: Path, env: dict[str, str], data_dir: Path
) -> None:
    assert run_chat("migrate", "--check", cwd=elsewhere, env=env).returncode == 1
    migrated = run_chat("migrate", cwd=elsewhere, env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert str(data_dir / "chat.db") in migrated.stdout
    assert "up to date" in migrated.stdout
    with sqlite3.connect(data_dir / "chat.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"messages", "alembic_version"} <= tables
    again = run_chat("migrate", cwd=elsewhere, env=env)
    assert again.returncode == 0, again.stderr
    assert run_chat("migrate", "--check", cwd=elsewhere, env=env).returncode == 0


def test_migrate_waits_for_another_process_holding_the_lock(
    elsewhere: Path, env: dict[str, str], data_dir: Path
) -> None:
    lock_path = data_dir / "chat.db.migrate-lock"
    with lock_path.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = subprocess.Popen(
            [sys.executable, "-m", "chat", "migrate"],
            cwd=elsewhere,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                waiting.wait(timeout=3)
            assert not (data_dir / "chat.db").exists() or _tables(data_dir / "chat.db") == set()
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
        _stdout, stderr = waiting.communicate(timeout=TIMEOUT_S)
    assert waiting.returncode == 0, stderr
    assert "messages" in _tables(data_dir / "chat.db")


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}


def test_serve_with_migrate_json_logs_and_a_clean_sigterm_exit(
    elsewhere: Path, env: dict[str, str], data_dir: Path
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chat", "--migrate", "--port", str(port), "--log-format", "json"],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", server, timeout=20)
        response = httpx.post(f"http://127.0.0.1:{port}/api/messages", json={"body": "hello"})
        assert response.status_code == 201
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=TIMEOUT_S)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, output
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert records, output
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    ready = [r for r in records if r["message"].startswith("chat ready")]
    assert len(ready) == 1
    # The absolute path of the database, wherever the server was started from.
    assert str(data_dir / "chat.db") in ready[0]["message"]
    assert any(r["logger"] == "chat.migrate" for r in records)
