"""Search at scale on SQLite: `python -m bench.search` (see bench/README.md, "Search").

Builds a database of `--rows` messages (1,000,000 by default; migrated by Alembic, so the FTS5
triggers index every row as it is inserted), then measures, in one run:

* the index's own query (the SQL chat.search.sqlite_fts5 emits, run with sqlite3) for a rare
  word, a common word newest first, and a common word by relevance, each next to the same
  search done with `LIKE '%word%'`;
* the same searches through `GET /api/search` of a real chat server on that database
  (room resolution, the query, reading the messages, snippets, JSON);
* what the index costs a write: raw sqlite3 inserts at one commit per row into a migrated
  database with the index (its triggers) and without.

Prints a table and one JSON line. Everything runs on 127.0.0.1, sequentially.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.dialects import sqlite as sqlite_dialect

from bench.rawsqlite import insert_for
from bench.servers import migrate, start_server
from bench.stats import percentile
from chat.search.index import Scope
from chat.search.query import parse_query
from chat.search.schema import TRIGGERS
from chat.search.sqlite_fts5 import Fts5Index

BUILD_BATCH = 50_000
RARE_EVERY = 100_000  # "zanzibar": 10 rows in a million
MEDIUM_EVERY = 10  # "deploy": 100,000 rows in a million
# Like bench.dbtools' history, plus a rare and a medium word; "fox" is in every row.
FILL_SQL = f"""
WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
INSERT INTO messages (id, body, author, client_id, created_at, room_id)
SELECT
    i,
    'history message ' || i || ': the quick brown fox jumps over the lazy dog'
        || CASE WHEN i % {RARE_EVERY} = 0 THEN ' zanzibar' ELSE '' END
        || CASE WHEN i % {MEDIUM_EVERY} = 0 THEN ' deploy tonight' ELSE '' END,
    'user' || (i % 97),
    NULL,
    strftime('%Y-%m-%d %H:%M:%f', 1767225600 + i * 0.25, 'unixepoch') || '000',
    1
FROM seq
"""
LIMIT = 20
SEARCHES = {
    "rare word": ("zanzibar", "newest"),
    "common word, newest first": ("fox", "newest"),
    "medium word, newest first": ("deploy", "newest"),
    "common word, relevance": ("fox", "relevance"),
}


def build(db: Path, rows: int) -> float:
    migrate(db)
    started = time.monotonic()
    connection = sqlite3.connect(db, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA cache_size = -262144")
        connection.execute("BEGIN")
        for start in range(1, rows + 1, BUILD_BATCH):
            connection.execute(FILL_SQL, (start, min(start + BUILD_BATCH - 1, rows)))
        connection.execute("COMMIT")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.monotonic() - started


def index_sql(word: str, sort: str) -> str:
    index = Fts5Index(trigram=False)
    query = parse_query(word)
    statement = index.statement(query, Scope(room_ids=(1,)), rank=sort == "relevance")
    if sort == "relevance":
        from sqlalchemy import select

        inner = statement.limit(1000).subquery()
        statement = select(inner.c.id).order_by(inner.c.rank, inner.c.id.desc())
    statement = statement.limit(LIMIT + 1)
    compiled = statement.compile(
        dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


def like_sql(word: str) -> str:
    return (
        "SELECT id FROM messages WHERE room_id IN (1) AND deleted_at IS NULL "
        f"AND body LIKE '%{word}%' ORDER BY id DESC LIMIT {LIMIT + 1}"
    )


def timed(run: Callable[[], object], repetitions: int) -> dict[str, float]:
    for _ in range(min(5, repetitions)):
        run()
    samples = []
    for _ in range(repetitions):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99)}


def measure_queries(db: Path, repetitions: int, like_repetitions: int) -> dict[str, Any]:
    connection = sqlite3.connect(db)
    results: dict[str, Any] = {}
    try:
        for label, (word, sort) in SEARCHES.items():
            sql = index_sql(word, sort)
            hits = len(connection.execute(sql).fetchall())
            results[label] = {
                "word": word,
                "results": hits,
                "index": timed(lambda sql=sql: connection.execute(sql).fetchall(), repetitions),
                "like": timed(
                    lambda word=word: connection.execute(like_sql(word)).fetchall(),
                    like_repetitions,
                ),
                "plan": [row[-1] for row in connection.execute("EXPLAIN QUERY PLAN " + sql)],
            }
    finally:
        connection.close()
    return results


def measure_api(db: Path, scratch: Path, repetitions: int) -> dict[str, Any]:
    server = start_server("chat", scratch=scratch, db_path=db)
    results: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
            for label, (word, sort) in SEARCHES.items():
                params = {"q": word, "sort": sort, "limit": str(LIMIT)}

                def get(params: dict[str, str] = params) -> None:
                    response = client.get("/api/search", params=params)
                    response.raise_for_status()

                results[label] = timed(get, repetitions)
            # The server's floor on this machine in the same run: a page of history.
            results["baseline: GET /api/messages"] = timed(
                lambda: client.get("/api/messages", params={"limit": str(LIMIT)}), repetitions
            )
    finally:
        server.stop()
    return results


def measure_writes(scratch: Path, seconds: float) -> dict[str, float]:
    with_index = scratch / "raw-index.db"
    without = scratch / "raw-no-index.db"
    migrate(with_index)
    migrate(without)
    connection = sqlite3.connect(without)
    try:
        for trigger in TRIGGERS:
            connection.execute(f"DROP TRIGGER {trigger}")
        connection.commit()
    finally:
        connection.close()
    rates = {}
    for label, db in (("raw 1/commit, index on", with_index), ("raw 1/commit, no index", without)):
        rates[label] = insert_for(str(db), seconds=seconds, batch=1, synchronous="FULL")[
            "rows_per_s"
        ]
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed runs per search")
    parser.add_argument("--like-requests", type=int, default=30, help="timed LIKE runs")
    parser.add_argument("--write-seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        db = scratch / "search.db"
        build_seconds = build(db, args.rows)
        queries = measure_queries(db, args.requests, args.like_requests)
        api = measure_api(db, scratch, args.requests)
        writes = measure_writes(scratch, args.write_seconds)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.rows:,} messages, built (with the index's triggers) in {build_seconds:.1f} s")
    print(
        f"{'search':<28} {'hits':>5} {'index p50/p99 ms':>18} {'LIKE p50/p99 ms':>18}"
        f" {'API p50/p99 ms':>16}"
    )
    for label, result in queries.items():
        index, like, http = result["index"], result["like"], api[label]
        print(
            f"{label:<28} {result['results']:>5} "
            f"{index['p50_ms']:>8.2f}/{index['p99_ms']:<8.2f} "
            f"{like['p50_ms']:>8.2f}/{like['p99_ms']:<8.2f} "
            f"{http['p50_ms']:>7.2f}/{http['p99_ms']:<7.2f}"
        )
    baseline = api["baseline: GET /api/messages"]
    print(
        f"{'baseline: GET /api/messages':<28} {'':>5} {'':>18} {'':>18} "
        f"{baseline['p50_ms']:>7.2f}/{baseline['p99_ms']:<7.2f}"
    )
    for label, rate in writes.items():
        print(f"{label:<28} {rate:>10.0f} rows/s")
    print(
        json.dumps(
            {
                "rows": args.rows,
                "build_s": build_seconds,
                "queries": queries,
                "api": api,
                "writes": writes,
            }
        )
    )


if __name__ == "__main__":
    main()
