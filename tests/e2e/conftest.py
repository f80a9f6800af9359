"""End-to-end fixtures: a real `python -m chat` process and Debian's Chromium.

Every test gets a fresh temporary directory with its own SQLite database migrated by Alembic, so
tests never see each other's messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page

from .server import ChatServer, free_port

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chat_server_env() -> dict[str, str]:
    """Extra CHAT_* variables for the server; override with parametrize("chat_server_env", ...)."""
    return {}


@pytest.fixture
def chat_server(tmp_path: Path, chat_server_env: dict[str, str]) -> Iterator[ChatServer]:
    server = ChatServer(workdir=tmp_path, port=free_port(), extra_env=chat_server_env)
    server.migrate()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


class ConsoleProblems:
    """Console errors, uncaught exceptions and CSP reports seen by the pages it watches."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        return page

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(f"console.{message.type}: {message.text} @ {message.location}")


@pytest.fixture
def console_problems() -> ConsoleProblems:
    return ConsoleProblems()
