"""PostgreSQL databases for tests: one uniquely named database per test run, dropped afterwards.

The server named by CHAT_TEST_POSTGRES_URL is only used to create and drop `chat_test_<random>`
databases, so concurrent runs (and other users of that server) never see each other's rows.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped]
import pytest

from chat.broadcast.postgres import asyncpg_dsn
from chat.models import Base
from tests.support.database import upgrade
from tests.support.services import POSTGRES_URL, unavailable

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5.0


def run_async(function: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in a private thread.

    Fixtures call this from anywhere, including from inside a running event loop.
    """
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(_as_coroutine(function)))
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target, name="run-async")
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]
    if not result:
        raise TimeoutError("the coroutine did not finish within 60s")
    return result[0]


async def _as_coroutine(function: Callable[[], Awaitable[T]]) -> T:
    return await function()


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT_S)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


class PostgresDatabase:
    """One migrated database of this test run; `fresh()` empties it for the next test."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"chat_test_{secrets.token_hex(6)}"
        self.url = with_database(admin_url, self.name)
        self._extra: list[str] = []

    def create(self) -> None:
        run_async(lambda: execute(self.admin_url, f'CREATE DATABASE "{self.name}"'))
        upgrade(self.url)

    def fresh(self) -> str:
        """Back to the state right after the migrations: every table emptied and ids restarted
        at 1, and the general room the rooms migration (0004) creates; returns the URL."""
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        run_async(
            lambda: execute(
                self.url,
                f"TRUNCATE {tables} RESTART IDENTITY CASCADE",
                "INSERT INTO rooms (id, name, title, topic, visibility, kind, archived, "
                "is_default, created_at) VALUES (1, 'general', 'General', '', 'public', 'room', "
                "false, true, now())",
                "SELECT setval('rooms_id_seq', 1)",
            )
        )
        return self.url

    def extra(self) -> str:
        """Another empty (unmigrated) database, dropped with this one."""
        name = f"{self.name}_{len(self._extra) + 1}"
        run_async(lambda: execute(self.admin_url, f'CREATE DATABASE "{name}"'))
        self._extra.append(name)
        return with_database(self.admin_url, name)

    def drop(self) -> None:
        names = [*self._extra, self.name]
        statements = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names]
        run_async(lambda: execute(self.admin_url, *statements))

    @property
    def asyncpg_url(self) -> str:
        return asyncpg_dsn(self.url)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    try:
        run_async(lambda: execute(POSTGRES_URL, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", error)
    database = PostgresDatabase(POSTGRES_URL)
    database.create()
    try:
        yield database
    finally:
        database.drop()


# Put on a module (pytestmark) whose tests use the `database_url` fixture to run them on both.
BOTH_ENGINES = pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
