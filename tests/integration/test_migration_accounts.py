"""A database made by the release before accounts (revision 0001), with messages in it, upgrades
to accounts and downgrades back with every message, id, order, author and time intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.database import downgrade, execute, rows, sqlite_url, upgrade
from tests.support.postgres import PostgresDatabase

ACCOUNTS = "0002"
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
# Ids with a gap, as after a failed transaction: they must survive exactly.
OLD_MESSAGES = [
    (1, "first", "ada", "c-1"),
    (2, "second", None, None),
    (5, "after a gap <b>", "grace", "c-5"),
    (6, "ünïcødé 🎉", "linus", None),
]


def seed_previous_release(url: str) -> None:
    upgrade(url, "0001")
    execute(
        url,
        "INSERT INTO messages (id, body, author, client_id, created_at) "
        "VALUES (:id, :body, :author, :client_id, :created_at)",
        [
            {
                "id": id_,
                "body": body,
                "author": author,
                "client_id": client_id,
                "created_at": START + timedelta(minutes=id_),
            }
            for id_, body, author, client_id in OLD_MESSAGES
        ],
    )


def messages(url: str) -> list[tuple[Any, ...]]:
    return rows(url, "SELECT id, body, author, client_id FROM messages ORDER BY id")


def check_round_trip(url: str, *, after_seed: str | None = None) -> None:
    seed_previous_release(url)
    if after_seed is not None:
        rows(url, after_seed)
    before = messages(url)
    times_before = rows(url, "SELECT created_at FROM messages ORDER BY id")
    assert before == [tuple(m) for m in OLD_MESSAGES]

    upgrade(url, ACCOUNTS)
    assert messages(url) == before
    assert rows(url, "SELECT created_at FROM messages ORDER BY id") == times_before
    assert rows(url, "SELECT DISTINCT user_id FROM messages") == [(None,)]
    # Ids keep growing after the upgrade: never one handed out before.
    execute(
        url,
        "INSERT INTO messages (body, created_at) VALUES (:body, :created_at)",
        [{"body": "new", "created_at": START + timedelta(days=1)}],
    )
    assert rows(url, "SELECT max(id) FROM messages") == [(7,)]

    downgrade(url, "0001")
    assert messages(url) == [*before, (7, "new", None, None)]
    upgrade(url, ACCOUNTS)
    assert messages(url) == [*before, (7, "new", None, None)]


def test_sqlite_database_of_the_previous_release_round_trips(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "old.db")
    check_round_trip(url)
    # The rebuilt table still never reuses an id (AUTOINCREMENT survived both rebuilds).
    ((sql,),) = rows(url, "SELECT sql FROM sqlite_master WHERE name = 'messages'")
    assert "AUTOINCREMENT" in sql


@pytest.mark.postgres
def test_postgres_database_of_the_previous_release_round_trips(
    postgres_database: PostgresDatabase,
) -> None:
    # Rows inserted with explicit ids leave the sequence behind; the previous release's own
    # inserts would have moved it to the highest id.
    check_round_trip(postgres_database.extra(), after_seed="SELECT setval('messages_id_seq', 6)")
