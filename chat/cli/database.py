"""What every command that opens the database shares: its `--database-url` option, a clean
goodbye to the engine, and the one line that says what went wrong with the database, naming
where it is and never a password."""

from __future__ import annotations

import argparse
import asyncio
import threading

from sqlalchemy.ext.asyncio import AsyncEngine

from chat.logs import redact
from chat.migrate import database_location
from chat.settings import Settings


def add_database_url(
    parser: argparse.ArgumentParser, defaults: Settings, *, subcommand: bool = False
) -> None:
    """The option, on the top-level parser and again on subcommands so that it may follow
    them. A subcommand's copy sets nothing unless given: argparse lets a subcommand's default
    overwrite what `chat --database-url X <subcommand>` gave."""
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=argparse.SUPPRESS if subcommand else defaults.database_url,
        help=f"CHAT_DATABASE_URL (now: {help_text(database_location(defaults.database_url))})",
    )


def help_text(value: str) -> str:
    """`value` inside an argparse help string, which formats it with `%`; any password in a
    URL hidden (`--help` must not print what CHAT_*_URL holds)."""
    return redact(value).replace("%", "%%")


def error_reason(error: BaseException) -> str:
    """The driver's own words for a database error (SQLAlchemy wraps them), on one line."""
    reason = getattr(error, "orig", None) or error
    text = " ".join(str(reason).split())
    return redact(text) if text else type(reason).__name__


# Python names a thread after its target: aiosqlite's one worker thread per connection.
_AIOSQLITE_WORKER_SUFFIX = "(_connection_worker_thread)"
_WORKER_JOIN_S = 2.0


async def dispose(engine: AsyncEngine) -> None:
    """`engine.dispose()`, then a bounded wait for aiosqlite's worker threads to end while the
    event loop still runs.

    A SQLite connection that failed to open (a missing directory) leaves its worker one last
    callback to post to the loop; when `asyncio.run` has closed the loop by then, the thread
    dies with a traceback on stderr (omnilib/aiosqlite#241), under the command's one-line error.
    """
    await engine.dispose()
    for thread in threading.enumerate():
        if thread.name.endswith(_AIOSQLITE_WORKER_SUFFIX) and thread.is_alive():
            await asyncio.to_thread(thread.join, _WORKER_JOIN_S)


def database_problem(database_url: str, error: BaseException) -> str:
    return f"cannot use the database ({database_location(database_url)}): {error_reason(error)}"
