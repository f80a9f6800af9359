"""Chat databases for the benchmark: count rows, and build a large history quickly."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from bench.servers import migrate

BUILD_BATCH = 50_000


def count_messages(db_path: Path) -> int:
    with sqlite3.connect(db_path) as connection:
        return int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])


# The rows are generated inside SQLite: on this machine a Python tuple per row costs ~10 us, which
# would dominate the build of a million-row history. One message every 250 ms from 2026-01-01,
# a link in every tenth body, some anonymous authors, a client_id on every other row, and
# created_at in the text format SQLAlchemy stores.
FILL_SQL = """
WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
INSERT INTO messages (id, body, author, client_id, created_at)
SELECT
    i,
    'history message ' || i || ': the quick brown fox jumps over the lazy dog'
        || CASE WHEN i % 10 = 0 THEN ' see https://example.org/page?id=' || i ELSE '' END,
    CASE WHEN i % 3 = 0 THEN NULL ELSE 'user' || (i % 97) END,
    CASE WHEN i % 2 = 0 THEN 'c-' || i ELSE NULL END,
    strftime('%Y-%m-%d %H:%M:%f', 1767225600 + i * 0.25, 'unixepoch') || '000'
FROM seq
"""


@contextlib.contextmanager
def seeding(db_path: Path, *, bulk: bool = False) -> Iterator[sqlite3.Connection]:
    """One transaction on a migrated database, written straight in as chat would store it.

    ``bulk``: a throw-away build of many rows: no journal, no fsync, a big page cache; the file
    goes back to WAL (chat's mode) at the end."""
    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        if bulk:
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            connection.execute("PRAGMA cache_size = -262144")
        connection.execute("BEGIN")
        yield connection
        connection.execute("COMMIT")
        if bulk:
            connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


def build_history(db_path: Path, rows: int) -> None:
    """Migrate ``db_path`` with Alembic, then fill ``messages`` with ``rows`` rows."""
    migrate(db_path)
    with seeding(db_path, bulk=True) as connection:
        for start in range(1, rows + 1, BUILD_BATCH):
            connection.execute(FILL_SQL, (start, min(start + BUILD_BATCH - 1, rows)))
