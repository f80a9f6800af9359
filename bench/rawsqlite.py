"""Raw ``sqlite3`` inserts into the migrated chat schema: the floor for chat's durable writes.

Run by the harness in its own process as ``python -m bench.rawsqlite DB --seconds S --batch N``;
it prints one JSON object. Same table, same indexes, same pragmas as chat (WAL plus the given
``synchronous``), one ``INSERT`` per row, one commit per ``--batch`` rows.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

INSERT = "INSERT INTO messages (body, author, client_id, created_at) VALUES (?, ?, ?, ?)"


def rows(tag: str) -> Iterator[tuple[str, str | None, str, str]]:
    """Rows shaped like the benchmark's chat messages: a token body and a unique client_id."""
    seq = 0
    while True:
        client_id = f"{tag}:{seq}"
        created_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        yield f"{client_id}:{time.monotonic_ns()}", None, client_id, created_at
        seq += 1


def insert_for(db: str, *, seconds: float, batch: int, synchronous: str) -> dict[str, float]:
    connection = sqlite3.connect(db, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        source = rows(f"raw{batch}-{time.time_ns()}")
        stored = 0
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            connection.execute("BEGIN IMMEDIATE")
            for _ in range(batch):
                connection.execute(INSERT, next(source))
            connection.execute("COMMIT")
            stored += batch
        elapsed = time.monotonic() - started
    finally:
        connection.close()
    return {"rows": stored, "seconds": elapsed, "rows_per_s": stored / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--synchronous", default="FULL", choices=("OFF", "NORMAL", "FULL"))
    args = parser.parse_args()
    result = insert_for(
        args.db, seconds=args.seconds, batch=args.batch, synchronous=args.synchronous
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
