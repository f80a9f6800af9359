"""Engine and session factory. SQLite connections get WAL, a busy timeout and durability pragmas."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from chat.settings import Settings

# Execution options for a session that will write: on SQLite the transaction takes the write
# lock up front (BEGIN IMMEDIATE), so a concurrent writer waits out busy_timeout instead of
# failing with "database is locked" when a read transaction tries to upgrade. Other engines
# ignore the option.
WRITE_EXECUTION_OPTIONS = {"sqlite_begin": "IMMEDIATE"}
# For a session that reads with one statement: on SQLite no BEGIN is sent, and the statement is
# its own (consistent) read transaction. Saves the round trips of a BEGIN through aiosqlite's
# thread on every history page and catch-up. Other engines ignore the option.
SINGLE_READ_EXECUTION_OPTIONS = {"sqlite_begin": None}


@contextlib.asynccontextmanager
async def single_read(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for a read of one statement (SINGLE_READ_EXECUTION_OPTIONS)."""
    async with sessionmaker() as session:
        await session.connection(execution_options=SINGLE_READ_EXECUTION_OPTIONS)
        yield session


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, pool_size=5, max_overflow=5)
        _install_sqlite_pragmas(engine, settings)
        return engine
    return create_async_engine(
        settings.database_url, pool_size=10, max_overflow=10, pool_pre_ping=True
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _install_sqlite_pragmas(engine: AsyncEngine, settings: Settings) -> None:
    synchronous = settings.sqlite_synchronous
    busy_timeout = int(settings.sqlite_busy_timeout_ms)

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL itself needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout}")
            # Set WAL only when the file is not in WAL mode yet (migrations leave it so). Setting
            # it takes a lock SQLite does not wait for: with another process writing, it failed
            # at once with "database is locked". The read first (which does wait out
            # busy_timeout) is what tells a fresh connection the file's mode.
            cursor.execute("SELECT count(*) FROM sqlite_master")
            cursor.fetchall()
            cursor.execute("PRAGMA journal_mode")
            ((mode,),) = cursor.fetchall()
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is not None:
            connection.exec_driver_sql(f"BEGIN {mode}")
