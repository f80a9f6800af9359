"""The search index's schema on each engine: DDL shared by the migration and the tests.

SQLite: an FTS5 external-content table over `messages.body`, kept in step by triggers in the
very statement (so the very transaction) that writes the row. Triggers rather than the writer
because every path that changes a body (the writer's multi-row INSERT, edits, the delete that
empties a body, imports and tools writing SQL directly) then keeps the index true without
knowing it exists; measured, the write path with the index on stays within the bar (see
bench/README.md, "Search").

PostgreSQL: a GIN index on the expression `to_tsvector('simple', body)`. `simple` lowercases
and splits on the parser's word boundaries, with no stemming and no stop words, so every
language matches by whole token, accents included (`café` finds `Café`, not `cafe`); SQLite
is configured the same way (`remove_diacritics 0`).

Trigram mode (CHAT_SEARCH_TRIGRAM=true when the migration runs) indexes every three
characters instead, for languages that do not put spaces between words (Chinese, Japanese):
FTS5's `trigram` tokenizer, or pg_trgm's GIN operator class on `body`. A deleted message's
body is emptied in the same UPDATE that marks it deleted, so its tokens leave the index at once.
"""

from __future__ import annotations

import os

FTS_TABLE = "messages_fts"
TRIGGERS = ("messages_fts_insert", "messages_fts_delete", "messages_fts_update")
POSTGRES_INDEX = "ix_messages_search"
POSTGRES_TRIGRAM_INDEX = "ix_messages_body_trgm"
# What a query's words are compared with on PostgreSQL (the index's expression, exactly).
POSTGRES_VECTOR = "to_tsvector('simple'::regconfig, body)"

TRIGRAM_ENV = "CHAT_SEARCH_TRIGRAM"
_TRUE = frozenset({"1", "true", "yes", "on"})

WORD_TOKENIZER = "unicode61 remove_diacritics 0"
TRIGRAM_TOKENIZER = "trigram"


def trigram_requested() -> bool:
    """Whether the migration builds a trigram index (read when it runs; the server then finds
    the mode in the schema itself)."""
    return os.environ.get(TRIGRAM_ENV, "").strip().lower() in _TRUE


def sqlite_create(*, trigram: bool) -> list[str]:
    tokenizer = TRIGRAM_TOKENIZER if trigram else WORD_TOKENIZER
    return [
        f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
        f"body, content='messages', content_rowid='id', tokenize='{tokenizer}')",
        # Back-fill: deleted messages have an empty body already; they add nothing.
        f"INSERT INTO {FTS_TABLE} (rowid, body) SELECT id, body FROM messages "
        "WHERE deleted_at IS NULL",
        *sqlite_triggers(),
    ]


def sqlite_triggers() -> list[str]:
    """The triggers alone. A later migration that rebuilds `messages` in batch mode (copy and
    rename) drops them with the old table: it must run these again."""
    remove_old = (
        f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, body) VALUES ('delete', old.id, old.body);"
    )
    add_new = f"INSERT INTO {FTS_TABLE} (rowid, body) VALUES (new.id, new.body);"
    return [
        f"CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON messages BEGIN {add_new} END",
        f"CREATE TRIGGER {TRIGGERS[1]} AFTER DELETE ON messages BEGIN {remove_old} END",
        f"CREATE TRIGGER {TRIGGERS[2]} AFTER UPDATE OF body ON messages "
        f"BEGIN {remove_old} {add_new} END",
    ]


def sqlite_drop() -> list[str]:
    return [*(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS), f"DROP TABLE {FTS_TABLE}"]


def postgres_create(*, trigram: bool) -> list[str]:
    statements = [f"CREATE INDEX {POSTGRES_INDEX} ON messages USING gin ({POSTGRES_VECTOR})"]
    if trigram:
        statements += [
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            f"CREATE INDEX {POSTGRES_TRIGRAM_INDEX} ON messages USING gin (body gin_trgm_ops)",
        ]
    return statements


def postgres_drop() -> list[str]:
    # The extension stays: other databases objects may use it, and it costs nothing idle.
    return [
        f"DROP INDEX IF EXISTS {POSTGRES_TRIGRAM_INDEX}",
        f"DROP INDEX IF EXISTS {POSTGRES_INDEX}",
    ]


def is_search_object(name: str | None, type_: str) -> bool:
    """The index's own tables and indexes, which the ORM models do not describe: schema
    comparisons (autogenerate, the models-agree tests) leave them out."""
    if name is None:
        return False
    if type_ == "table":
        return name == FTS_TABLE or name.startswith(f"{FTS_TABLE}_")
    if type_ == "index":
        return name in (POSTGRES_INDEX, POSTGRES_TRIGRAM_INDEX)
    return False
