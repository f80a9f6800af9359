"""A database of the release before conversation features (revision 0004, rooms) upgrades to
edits, reactions and mentions and back with every message intact, on SQLite and PostgreSQL; rows
written by other tools after the upgrade (no version, no mentions_room) stay valid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.database import downgrade, execute, rows, sqlite_url, upgrade
from tests.support.postgres import PostgresDatabase

BEFORE = "0004"
CONVERSATION = "0005"
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OLD_MESSAGES = [(1, "first", "ada"), (2, "second", None), (7, "ünïcødé 🎉 <b>", "grace")]


def seed(url: str) -> None:
    upgrade(url, BEFORE)
    execute(
        url,
        "INSERT INTO users (id, username, display_name, display_key, role, disabled, "
        "created_at) VALUES (1, 'ada', 'Ada', 'ada', 'member', false, :at)",
        {"at": START},
    )
    execute(
        url,
        "INSERT INTO messages (id, body, author, created_at, room_id) "
        "VALUES (:id, :body, :author, :at, 1)",
        [
            {"id": id_, "body": body, "author": author, "at": START + timedelta(minutes=id_)}
            for id_, body, author in OLD_MESSAGES
        ],
    )


def messages(url: str) -> list[tuple[object, ...]]:
    return rows(url, "SELECT id, body, author, room_id FROM messages ORDER BY id")


def check_round_trip(url: str, *, after_seed: str | None = None) -> None:
    seed(url)
    if after_seed is not None:
        rows(url, after_seed)
    before = messages(url)
    assert before == [(id_, body, author, 1) for id_, body, author in OLD_MESSAGES]

    upgrade(url, CONVERSATION)
    assert messages(url) == before
    # Every old message is unedited, undeleted, version 0, and replies to nothing.
    assert rows(
        url,
        "SELECT id, version, mentions_room, edited_at, deleted_at, reply_to "
        "FROM messages ORDER BY id",
    ) == [(id_, 0, False, None, None, None) for id_, *_ in OLD_MESSAGES]
    # Another writer that knows nothing of the new columns still inserts valid rows.
    execute(
        url,
        "INSERT INTO messages (body, created_at, room_id) VALUES ('raw', :at, 1)",
        {"at": START + timedelta(days=1)},
    )
    assert rows(url, "SELECT version, mentions_room FROM messages WHERE body = 'raw'") == [
        (0, False)
    ]
    execute(
        url,
        "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (1, 1, '👍', :at)",
        {"at": START},
    )
    execute(
        url,
        "INSERT INTO message_versions (message_id, body, written_at, replaced_at) "
        "VALUES (7, 'earlier text', :at, :at)",
        {"at": START},
    )

    downgrade(url, BEFORE)
    assert messages(url)[: len(before)] == before
    upgrade(url, CONVERSATION)
    assert messages(url)[: len(before)] == before
    assert rows(url, "SELECT count(*) FROM reactions") == [(0,)]


def test_sqlite_database_of_the_previous_release_round_trips(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "old.db")
    check_round_trip(url)
    ((sql,),) = rows(url, "SELECT sql FROM sqlite_master WHERE name = 'messages'")
    assert "AUTOINCREMENT" in sql  # the batch rebuild kept ids from ever being reused


@pytest.mark.postgres
def test_postgres_database_of_the_previous_release_round_trips(
    postgres_database: PostgresDatabase,
) -> None:
    check_round_trip(
        postgres_database.extra(),
        after_seed="SELECT setval('messages_id_seq', 7), setval('users_id_seq', 1)",
    )
