"""What rooms cost: fan-out over many small rooms, and catching up on all of them at once.

* `rooms`: `--rooms-clients` guest sockets (10,000) in `--rooms-count` public rooms (1,000) of
  equal size, each socket subscribed to its room with `{"type": "subscribe", "room"}`, and
  `--rooms-rate` messages per second in total (200) spread over the rooms in turn, each from a
  member of its room. p50/p99 delivery latency, loss, and the server's CPU per delivery (server
  CPU seconds in the window / deliveries in the window), chat against `naive-rooms`
  (`bench/peers/naive_rooms.py`: the naive Starlette broadcast with a dict of rooms).
* `catchup`: one account in `--catchup-rooms` private rooms (200), `--catchup-messages` stored
  messages (1M) spread over them with their change-log rows, then 1,000 changes to earlier
  messages (edits, deletes, reactions, as the server writes them) and 1,000 more messages.
  `GET /api/events?after=<cursor>&limit=1000` with the account's token where the 1,000
  messages, or the 1,000 changes, came after the cursor, next to the same request with an
  up-to-date cursor and a 50-message history page, in the same run.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from bench.accounts import SEEDED_AT, add_account, join_room
from bench.dbtools import BUILD_BATCH, seeding
from bench.scenarios import (
    HISTORY_METRICS,
    Block,
    Context,
    Run,
    _failed,
    _phase_metrics,
    _rows_label,
    _run_id,
    http_run,
    run_job,
    running,
)
from bench.servers import Server, ServerError, migrate

logger = logging.getLogger(__name__)

ROOMS_COLUMNS = ("chat", "naive-rooms")
ROOMS_METRICS = (
    "p50_ms",
    "p99_ms",
    "max_ms",
    "server_cpu_us_per_delivery",
    "delivered_per_s",
    "loss_pct",
    "lost",
    "disconnects",
    "connect_failures",
    "errors",
    "connect_s",
    "loadgen_cpu_pct",
    "server_cpu_pct",
    "other_cpu_pct",
)
CATCHUP_LIMIT = 1000  # GET /api/events answers at most this many events at once


# --------------------------------------------------------------------------- seeding


def insert_rooms(
    connection: sqlite3.Connection, names: list[str], *, visibility: str
) -> dict[str, int]:
    """Insert rooms as chat stores them; their ids by name."""
    ids = {}
    for name in names:
        room_id = connection.execute(
            "INSERT INTO rooms (name, title, topic, visibility, kind, archived, is_default,"
            " created_by, created_at) VALUES (?, ?, '', ?, 'room', 0, 0, NULL, ?)",
            (name, name, visibility, SEEDED_AT),
        ).lastrowid
        assert room_id is not None
        ids[name] = room_id
    return ids


def seed_rooms(db_path: Path, names: list[str]) -> None:
    """Migrate ``db_path`` and add public rooms called ``names``."""
    migrate(db_path)
    with seeding(db_path) as connection:
        insert_rooms(connection, names, visibility="public")


# --------------------------------------------------------------------------- many rooms


def room_names(count: int) -> list[str]:
    return [f"bench-{number}" for number in range(count)]


def many_rooms(ctx: Context) -> None:
    o = ctx.options
    size = o.rooms_clients // o.rooms_count
    variant = "deflate" if o.rooms_compression == "deflate" else "no deflate"
    title = (
        f"many rooms: {size * o.rooms_count} sockets in {o.rooms_count} rooms of {size},"
        f" {o.rooms_rate:g} msg/s in total over the rooms, {o.duration:g} s, {variant};"
        " target: chat/naive-rooms <= 1 on p99 and CPU per delivery"
    )
    ctx.block(Block("rooms", "", title, ROOMS_COLUMNS, ROOMS_METRICS, (ROOMS_COLUMNS,)))
    names = room_names(o.rooms_count)
    db = ctx.scratch / "rooms.db"
    seed_rooms(db, names)
    # Opening 10,000 sockets takes about a minute here: each server gets its sockets once and
    # is measured --reps times on them (chat's repetitions, then the peer's), not alternated.
    with running(ctx, ROOMS_COLUMNS, db_path=db) as servers:
        for server in servers.values():
            for run in _rooms_runs(ctx, server, names):
                ctx.record(run)


def _rooms_runs(ctx: Context, server: Server, names: list[str]) -> list[Run]:
    o = ctx.options
    job = {
        "kind": "rooms",
        "url": server.ws_url,
        "server_pid": server.pid,
        "clients": o.rooms_clients,
        "rooms": names,
        "rate": o.rooms_rate,
        "compression": o.rooms_compression,
        "repeats": o.reps,
        "warmup": o.warmup,
        "duration": o.duration,
        "drain": o.drain,
        "run_id": _run_id(),
    }
    limit = 60 + o.rooms_clients / 20 + o.reps * (o.warmup + o.duration + o.drain + 5)
    result = run_job(ctx, server, job, limit=limit)
    if "error" in result:
        failed = _failed(result, ROOMS_METRICS)
        return [Run("rooms", "", server.name, rep, failed, result) for rep in range(o.reps)]
    runs = []
    for rep, phase in enumerate(result["phases"]):
        metrics = _phase_metrics(result, phase)
        del metrics["acked_per_s"]
        metrics["server_cpu_us_per_delivery"] = float(phase["server_cpu_us_per_delivery"])
        metrics["connect_s"] = float(result["connect_s"])
        details = {k: v for k, v in result.items() if k != "phases"}
        runs.append(Run("rooms", "", server.name, rep, metrics, {**details, "phase": phase}))
    return runs


# --------------------------------------------------------------------------- catch-up

# Generated inside SQLite (bench.dbtools explains why): message i lives in room
# `first_room + i % rooms`, written by the reader or by someone else, one every 250 ms.
FILL_MESSAGES = """
WITH RECURSIVE seq(i) AS (SELECT :low UNION ALL SELECT i + 1 FROM seq WHERE i < :high)
INSERT INTO messages (id, body, author, user_id, room_id, created_at)
SELECT
    i,
    'catch-up message ' || i || ': the quick brown fox jumps over the lazy dog',
    CASE WHEN i % 2 = 0 THEN :reader_name ELSE :other_name END,
    CASE WHEN i % 2 = 0 THEN :reader ELSE :other END,
    :first_room + i % :rooms,
    strftime('%Y-%m-%d %H:%M:%f', 1767225600 + i * 0.25, 'unixepoch') || '000'
FROM seq
"""
# One change-log row per message, numbered `shift` above the message id.
FILL_MESSAGE_EVENTS = """
INSERT INTO events (id, kind, room_id, message_id, created_at)
SELECT id + :shift, 'message', room_id, id, created_at FROM messages WHERE id BETWEEN :low AND :high
"""
# The changes: message `before - 3k` (k = 0 .. count-1) is edited, deleted or reacted to by
# turns (k % 3), each with its event in log order from `first_seq`.
CHANGE_TARGETS = """
CREATE TEMP TABLE targets AS
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < :count - 1)
SELECT n, :before - 3 * n AS message_id, n % 3 AS change FROM k
"""
CHANGE_SQL = (
    "INSERT INTO message_versions (message_id, body, written_at, replaced_at)"
    " SELECT m.id, m.body, m.created_at, :now FROM messages m"
    " JOIN targets t ON t.message_id = m.id WHERE t.change = 0",
    "UPDATE messages SET body = 'edited: ' || body, edited_at = :now, version = version + 1"
    " WHERE id IN (SELECT message_id FROM targets WHERE change = 0)",
    "UPDATE messages SET body = '', deleted_at = :now, deleted_by = :reader,"
    " version = version + 1 WHERE id IN (SELECT message_id FROM targets WHERE change = 1)",
    "INSERT INTO reactions (message_id, user_id, emoji, created_at)"
    " SELECT message_id, u.id, e.emoji, :now FROM targets"
    " CROSS JOIN (SELECT :reader AS id UNION ALL SELECT :other) u"
    " CROSS JOIN (SELECT '👍' AS emoji UNION ALL SELECT '🎉') e WHERE change = 2",
    "UPDATE messages SET version = version + 4"
    " WHERE id IN (SELECT message_id FROM targets WHERE change = 2)",
    "INSERT INTO events (id, kind, room_id, user_id, message_id, created_at)"
    " SELECT :first_seq + t.n,"
    " CASE t.change WHEN 0 THEN 'message_edited' WHEN 1 THEN 'message_deleted'"
    " ELSE 'reactions_changed' END, m.room_id, :reader, m.id, :now"
    " FROM targets t JOIN messages m ON m.id = t.message_id",
)


def build_catchup(db_path: Path, *, messages: int, rooms: int, missed: int) -> dict[str, Any]:
    """Migrate ``db_path`` and fill it (see the module's docstring); the reader's token, a
    room name, and the cursors: before the changes, before the last messages, the newest."""
    migrate(db_path)
    with seeding(db_path, bulk=True) as connection:
        reader, token = add_account(connection, "reader")
        other, writer_token = add_account(connection, "writer")
        ids = insert_rooms(connection, [f"c-{n}" for n in range(rooms)], visibility="private")
        for room_id in ids.values():
            join_room(connection, reader, room_id)
            join_room(connection, other, room_id)
        names = {"reader_name": "reader", "other_name": "writer", "reader": reader}
        params = {**names, "other": other, "first_room": min(ids.values()), "rooms": rooms}
        for start in range(1, messages + 1, BUILD_BATCH):
            end = min(start + BUILD_BATCH - 1, messages)
            connection.execute(FILL_MESSAGES, {**params, "low": start, "high": end})
        before_changes = messages - missed
        connection.execute(FILL_MESSAGE_EVENTS, {"shift": 0, "low": 1, "high": before_changes})
        connection.execute(CHANGE_TARGETS, {"count": missed, "before": before_changes})
        now = "2026-06-01 00:00:00.000000"
        change = {"now": now, "reader": reader, "other": other, "first_seq": before_changes + 1}
        for statement in CHANGE_SQL:
            connection.execute(statement, change)
        connection.execute(
            FILL_MESSAGE_EVENTS, {"shift": missed, "low": before_changes + 1, "high": messages}
        )
    return {
        "token": token,
        "writer_token": writer_token,
        "room": "c-0",
        "before_changes": before_changes,
        "before_messages": before_changes + missed,
        "latest": messages + missed,
    }


def post_live(server: Server, token: str, *, rooms: int, count: int) -> None:
    """Post ``count`` messages through the API, one room after another, as a writer would:
    the server stores, renders and broadcasts each (and keeps its rendering, as it does for
    every message it publishes)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        for number in range(count):
            response = client.post(
                f"/api/rooms/c-{number % rooms}/messages",
                json={"body": f"live message {number}: the quick brown fox"},
            )
            if response.status_code != 201:
                raise ServerError(f"posting: {response.status_code} {response.text[:200]}")


def newest_cursor(server: Server, token: str, after: int) -> int:
    response = httpx.get(
        f"{server.base_url}/api/events",
        params={"after": after, "limit": CATCHUP_LIMIT},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer = response.json()
    if response.status_code != 200 or answer["has_more"] or answer["reload"]:
        raise ServerError(f"catching up: {response.status_code} {response.text[:200]}")
    return int(answer["cursor"])


def catchup(ctx: Context) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    o = ctx.options
    missed = CATCHUP_LIMIT
    label = _rows_label(o.catchup_messages)
    columns = (
        f"{missed} messages",
        f"{missed} messages, cold",
        f"{missed} changes",
        "up to date",
        "history page",
    )
    title = (
        f"catch-up: GET /api/events?after=<cursor>&limit={missed}, one account in"
        f" {o.catchup_rooms} rooms, {label} in messages, {o.catchup_concurrency}"
        f" keep-alive connection(s), {o.duration:g} s; `messages`: posted live (rendered and"
        " kept by the server), `cold`: written to the database only (rendered by the first"
        " catch-up, then remembered),"
        " `up to date`: the newest cursor, `history page`: GET /api/rooms/<room>/messages?limit=50;"
        " targets: p99 < 50 ms (messages), < 100 ms (changes)"
    )
    up_to_date = columns[3]
    ratios = tuple((column, up_to_date) for column in columns[:3])
    ctx.block(Block("catchup", "", title, columns, HISTORY_METRICS, ratios))
    db = ctx.scratch / "catchup.db"
    logger.info("building the catch-up database: %d messages", o.catchup_messages)
    seeded = build_catchup(db, messages=o.catchup_messages, rooms=o.catchup_rooms, missed=missed)
    events = f"/api/events?limit={missed}&after="
    headers = {"Authorization": f"Bearer {seeded['token']}"}
    with running(ctx, ["chat"], db_path=db) as servers:
        chat = servers["chat"]
        logger.info("posting %d messages live", missed)
        post_live(chat, seeded["writer_token"], rooms=o.catchup_rooms, count=missed)
        latest = newest_cursor(chat, seeded["token"], seeded["latest"])
        requests = {
            columns[0]: (events + str(seeded["latest"]), missed),
            columns[1]: (events + str(seeded["before_messages"]), missed),
            columns[2]: (events + str(seeded["before_changes"]), missed),
            columns[3]: (events + str(latest), 0),
            columns[4]: (f"/api/rooms/{seeded['room']}/messages?limit=50", None),
        }
        for rep in range(o.reps):
            for column, (path, expected) in requests.items():
                job = {
                    "kind": "get",
                    "host": "127.0.0.1",
                    "port": chat.port,
                    "server_pid": chat.pid,
                    "path": path,
                    "headers": headers,
                    "expect_events": expected,
                    "expect_messages": expected is None,
                    "concurrency": o.catchup_concurrency,
                    "warmup": o.warmup,
                    "duration": o.duration,
                }
                ctx.record(http_run(ctx, chat, job, scenario="catchup", column=column, rep=rep))
