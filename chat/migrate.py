"""Schema migrations: the Alembic scripts shipped in the package, run from any directory.

`chat migrate` and `--migrate` (or `CHAT_MIGRATE_ON_START=true`) upgrade the configured database
to the revision this code needs; the server refuses to start on any other revision. When several
nodes start at once with `--migrate`, one migrates and the others wait for it: on PostgreSQL they
queue on an advisory lock taken in the migration's own transaction, on SQLite on an exclusive
lock of a file beside the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat.resources import migrations_dir

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key shared by every node of a deployment: the bytes of "chatmigr".
POSTGRES_LOCK_KEY = int.from_bytes(b"chatmigr", "big") & 0x7FFF_FFFF_FFFF_FFFF
MIGRATE_COMMAND = "chat migrate"


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: tuple[str, ...]  # the revision(s) recorded in the database; () when never migrated
    head: str  # the revision this code needs

    @property
    def at_head(self) -> bool:
        return self.current == (self.head,)

    def describe(self) -> str:
        """One line for an operator: what is wrong and the command that fixes it."""
        if self.at_head:
            return f"the database schema is at revision {self.head}"
        if not self.current:
            found = "has no chat schema (never migrated)"
        else:
            found = f"is at revision {', '.join(self.current)}"
        return (
            f"the database {found}, this server needs revision {self.head}: "
            f"run `{MIGRATE_COMMAND}` (or start with --migrate) against the same CHAT_DATABASE_URL"
        )


class SchemaNotAtHead(RuntimeError):
    """The server was started on a database whose schema is not the one its code needs."""

    def __init__(self, status: SchemaStatus) -> None:
        super().__init__(status.describe())
        self.status = status


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic configuration for the shipped scripts; no alembic.ini is read."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["configure_logger"] = False
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the shipped migrations have {len(heads)} heads: {heads}")
    return heads[0]


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_heads)
    return SchemaStatus(current=current, head=head_revision())


async def prepare_schema(engine: AsyncEngine, *, migrate: bool) -> SchemaStatus:
    """Upgrade first when asked to; raise SchemaNotAtHead unless the schema is then at head."""
    status = await upgrade(engine) if migrate else await schema_status(engine)
    if not status.at_head:
        raise SchemaNotAtHead(status)
    return status


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


async def upgrade(engine: AsyncEngine, revision: str = "head") -> SchemaStatus:
    """Upgrade to `revision`, waiting while another process migrates the same database."""
    async with _migration_lock(engine) as connection:
        before = await connection.run_sync(_current_heads)
        await connection.run_sync(_run_upgrade, revision)
        after = await connection.run_sync(_current_heads)
    if before != after:
        logger.info(
            "migrated the database from %s to %s", ", ".join(before) or "nothing", ", ".join(after)
        )
    return SchemaStatus(current=after, head=head_revision())


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@contextlib.asynccontextmanager
async def _migration_lock(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that only one process at a time holds."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            # Released with the transaction: at the commit of the migration, or at its rollback.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY}
            )
            yield connection
        return
    lock_path = _sqlite_lock_path(engine)
    handle = None if lock_path is None else await asyncio.to_thread(_lock_file, lock_path)
    try:
        async with engine.begin() as connection:
            yield connection
    finally:
        if handle is not None:
            os.close(handle)  # closing the file releases its lock


def _sqlite_lock_path(engine: AsyncEngine) -> Path | None:
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        return None
    path = Path(database).resolve()
    return path.with_name(path.name + ".migrate-lock")


def _lock_file(path: Path) -> int:
    """Block until this process holds an exclusive lock on `path`; returns the open file."""
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError:
        os.close(handle)
        raise
    return handle


def database_location(database_url: str) -> str:
    """Where the data lives, for the start-up log: the absolute file of a SQLite database, or
    the URL without its password."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            return "SQLite in memory"
        return f"SQLite file {Path(database).resolve()}"
    return url.render_as_string(hide_password=True)
