"""Migrations run both ways and agree with the models."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from chat.models import Base
from chat.search.schema import is_search_object
from tests.support.database import downgrade, sqlite_url, upgrade


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows} - {"sqlite_sequence"}


def test_upgrade_and_downgrade_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    url = sqlite_url(path)
    upgrade(url)
    assert tables(path) == {
        "alembic_version",
        "messages",
        "users",
        "sessions",
        "api_tokens",
        "invites",
        "external_identities",
        "oidc_logins",
        "rooms",
        "memberships",
        "events",
        "message_versions",
        "reactions",
        "mentions",
        "messages_fts",
        "messages_fts_data",
        "messages_fts_idx",
        "messages_fts_docsize",
        "messages_fts_config",
    }
    downgrade(url, "base")
    assert tables(path) == {"alembic_version"}
    upgrade(url)
    assert "messages" in tables(path)


def _not_search_index(
    item: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # The search index (FTS5 tables, a GIN index) is migrated DDL the models do not describe.
    return not (reflected and compare_to is None and is_search_object(name, type_))


def schema_differences(url: str) -> list[object]:
    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": _not_search_index}
        )
        return list(compare_metadata(context, Base.metadata))

    async def run() -> list[object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_models_and_migrations_agree_on_sqlite(database_url: str) -> None:
    assert schema_differences(database_url) == []


def test_autogenerate_would_notice_a_difference(database_url: str) -> None:
    # Proves the comparison above can fail: drop the unique constraint and look again.
    downgrade(database_url, "base")
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    assert schema_differences(database_url) != []
