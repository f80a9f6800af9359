"""The search migration (0006) on a database of the release before it, on SQLite and
PostgreSQL: back-filled, deleted messages left out, kept in step afterwards, and removed by the
downgrade with every message intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.test_migration_rooms import execute, rows
from tests.support.database import downgrade, sqlite_url, upgrade
from tests.support.postgres import PostgresDatabase

BEFORE_SEARCH = "0005"
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OLD = [
    (1, "the quick brown fox", None),
    (2, "", START),  # deleted: its body emptied by the release before
    (3, "Café au lait for everyone", None),
    (4, "another quick note", None),
]


def seed(url: str) -> None:
    upgrade(url, BEFORE_SEARCH)
    execute(
        url,
        "INSERT INTO messages (id, body, author, created_at, room_id, deleted_at) "
        "VALUES (:id, :body, 'ada', :at, 1, :deleted_at)",
        [
            {"id": i, "body": body, "at": START + timedelta(minutes=i), "deleted_at": deleted}
            for i, body, deleted in OLD
        ],
    )


def found(url: str, word: str) -> list[int]:
    if url.startswith("sqlite"):
        sql = f"SELECT rowid FROM messages_fts WHERE messages_fts MATCH '\"{word}\"' ORDER BY rowid"
    else:
        sql = (
            "SELECT id FROM messages WHERE to_tsvector('simple', body) "
            f"@@ plainto_tsquery('simple', '{word}') ORDER BY id"
        )
    return [row[0] for row in rows(url, sql)]


def search_objects(url: str) -> list[str]:
    if url.startswith("sqlite"):
        sql = "SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%' ORDER BY name"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE indexname LIKE '%search%'"
    return [row[0] for row in rows(url, sql)]


def check_round_trip(url: str) -> None:
    seed(url)
    before = rows(url, "SELECT id, body, deleted_at FROM messages ORDER BY id")
    assert search_objects(url) == []

    upgrade(url)
    assert search_objects(url) != []
    assert found(url, "quick") == [1, 4]
    assert found(url, "café") == [3]
    assert found(url, "CAFÉ") == [3]
    assert found(url, "cafe") == []  # accents match by token, not folded

    # Kept in step by whatever writes the row: an edit re-indexes, a delete empties.
    execute(url, "UPDATE messages SET body = 'a slow fox' WHERE id = 4", {})
    assert found(url, "quick") == [1]
    assert found(url, "slow") == [4]
    execute(url, "UPDATE messages SET body = '', deleted_at = :at WHERE id = 1", {"at": START})
    assert found(url, "fox") == [4]
    execute(
        url,
        "INSERT INTO messages (id, body, author, created_at, room_id) "
        "VALUES (9, 'a fresh fox', 'ada', :at, 1)",
        {"at": START},
    )
    assert found(url, "fox") == [4, 9]

    downgrade(url, BEFORE_SEARCH)
    assert search_objects(url) == []
    after = rows(url, "SELECT id, body, deleted_at FROM messages ORDER BY id")
    assert [row[0] for row in after] == [1, 2, 3, 4, 9]
    assert after[2] == before[2]
    upgrade(url)
    assert found(url, "fox") == [4, 9]


def test_sqlite_search_index_round_trips(tmp_path: Path) -> None:
    check_round_trip(sqlite_url(tmp_path / "old.db"))


@pytest.mark.postgres
def test_postgres_search_index_round_trips(postgres_database: PostgresDatabase) -> None:
    check_round_trip(postgres_database.extra())


def test_sqlite_trigram_index_finds_chinese(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_SEARCH_TRIGRAM", "true")
    url = sqlite_url(tmp_path / "trigram.db")
    upgrade(url)
    execute(
        url,
        "INSERT INTO messages (body, author, created_at, room_id) VALUES (:b, 'ada', :at, 1)",
        {"b": "我们明天在北京大学见面", "at": START},
    )
    assert [r[0] for r in rows(url, "SELECT rowid FROM messages_fts WHERE body MATCH '北京大学'")]
    ((sql,),) = rows(url, "SELECT sql FROM sqlite_master WHERE name = 'messages_fts'")
    assert "trigram" in sql
