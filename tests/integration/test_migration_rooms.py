"""A database made by the release before rooms (revision 0003), with accounts and messages,
upgrades to rooms and back with every message, id, order, author and time intact, on SQLite and
PostgreSQL; the downgrade refuses to fold private rooms into the one room of the old release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.database import downgrade, execute, rows, sqlite_url, upgrade
from tests.support.postgres import PostgresDatabase

BEFORE_ROOMS = "0003"
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
# Ids with a gap, as after a failed transaction: they must survive exactly.
OLD_MESSAGES = [
    (1, "first", "ada", "c-1", 1),
    (2, "second", None, None, None),
    (5, "after a gap <b>", "grace", "c-5", 2),
    (6, "ünïcødé 🎉", "linus", None, None),
]


def seed_previous_release(url: str, *, after_seed: str | None) -> None:
    upgrade(url, BEFORE_ROOMS)
    for user_id, name in ((1, "ada"), (2, "grace")):
        execute(
            url,
            "INSERT INTO users (id, username, display_name, display_key, role, disabled, "
            "created_at) VALUES (:id, :name, :name, :name, 'member', false, :at)",
            {"id": user_id, "name": name, "at": START},
        )
    execute(
        url,
        "INSERT INTO messages (id, body, author, client_id, created_at, user_id) "
        "VALUES (:id, :body, :author, :client_id, :created_at, :user_id)",
        [
            {
                "id": id_,
                "body": body,
                "author": author,
                "client_id": client_id,
                "created_at": START + timedelta(minutes=id_),
                "user_id": user_id,
            }
            for id_, body, author, client_id, user_id in OLD_MESSAGES
        ],
    )
    if after_seed is not None:
        rows(url, after_seed)


def messages(url: str) -> list[tuple[Any, ...]]:
    return rows(url, "SELECT id, body, author, client_id, user_id FROM messages ORDER BY id")


def check_round_trip(url: str, *, after_seed: str | None = None) -> None:
    seed_previous_release(url, after_seed=after_seed)
    before = messages(url)
    times = rows(url, "SELECT created_at FROM messages ORDER BY id")
    assert before == [tuple(m) for m in OLD_MESSAGES]

    upgrade(url)
    assert messages(url) == before
    assert rows(url, "SELECT created_at FROM messages ORDER BY id") == times
    assert rows(url, "SELECT id, name, visibility, kind, is_default FROM rooms") == [
        (1, "general", "public", "room", True)
    ]
    assert rows(url, "SELECT DISTINCT room_id FROM messages") == [(1,)]
    # Every account is a member of general, with everything before the upgrade read.
    assert rows(url, "SELECT user_id, role, last_read_id FROM memberships ORDER BY user_id") == [
        (1, "member", 6),
        (2, "member", 6),
    ]
    # The log starts with the old messages, numbered as they were (an old catch-up cursor, a
    # message id, is a position in the log), and continues above every id handed out.
    assert rows(url, "SELECT id, kind, room_id, message_id FROM events ORDER BY id") == [
        (id_, "message", 1, id_) for id_, *_ in OLD_MESSAGES
    ]
    execute(
        url,
        "INSERT INTO events (kind, room_id, created_at) VALUES ('room_updated', 1, :at)",
        {"at": START + timedelta(days=1)},
    )
    assert rows(url, "SELECT max(id) FROM events") == [(7,)]

    downgrade(url, BEFORE_ROOMS)
    assert messages(url) == before
    upgrade(url)
    assert messages(url) == before


def test_sqlite_database_of_the_previous_release_round_trips(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "old.db")
    check_round_trip(url)
    for table in ("messages", "events", "rooms"):
        ((sql,),) = rows(url, f"SELECT sql FROM sqlite_master WHERE name = '{table}'")
        assert "AUTOINCREMENT" in sql, table  # no id is ever handed out twice


@pytest.mark.postgres
def test_postgres_database_of_the_previous_release_round_trips(
    postgres_database: PostgresDatabase,
) -> None:
    # Rows inserted with explicit ids leave the sequences behind; the previous release's own
    # inserts would have moved them to the highest ids.
    check_round_trip(
        postgres_database.extra(),
        after_seed="SELECT setval('messages_id_seq', 6), setval('users_id_seq', 2)",
    )


def test_downgrade_refuses_while_a_message_lives_outside_general(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "rooms.db")
    upgrade(url)
    execute(
        url,
        "INSERT INTO rooms (name, title, topic, visibility, kind, archived, is_default, "
        "created_at) VALUES ('secret', 'Secret', '', 'private', 'room', 0, 0, :at)",
        {"at": START},
    )
    execute(
        url,
        "INSERT INTO messages (body, created_at, room_id) VALUES ('private words', :at, 2)",
        {"at": START},
    )
    with pytest.raises(RuntimeError, match="rooms other than general"):
        downgrade(url, BEFORE_ROOMS)
    assert rows(url, "SELECT body, room_id FROM messages") == [("private words", 2)]
