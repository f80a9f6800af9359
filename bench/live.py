"""What the live features cost: typing indicators, and presence while sockets come and go.

* `typing`: `--typing-members` signed-in sockets (1,000; one account each, every one a member of
  `general`), and on the same sockets, one after another in every repetition:
  `--typing-typers` of them (50) sending `{"type": "typing", "room": "general"}` every 2-3 s
  (`typing`), `--typing-rate` messages per second (20) from 10 of them (`messages`), and nothing
  (`quiet`). The server's CPU in each; the figure is typing/messages (target: under 0.10), also
  net of `quiet`.
* `presence-churn`: `--churn-base` signed-in sockets stay open (10,000; one account each, all in
  `general`); the first `--churn-room` of them (100) share the room `bystanders`, which gets
  `--churn-msg-rate` messages per second (20) from 10 of them, and watch the presence of the
  room `lobby`, whose members are `--churn-pool` other accounts (400). The bystanders' p99 is
  measured without churn and then with `--churn-rate` sockets per second (500) of the lobby's
  accounts connecting, each closing again `--churn-lifetime` (1 s) later: as many disconnects
  as connects per second, every one a presence change the bystanders watch. Target: churn/quiet
  p99 at most 1.2.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from bench.accounts import GENERAL_ID, add_account, join_room, seed_accounts
from bench.dbtools import seeding
from bench.rooms import insert_rooms
from bench.scenarios import (
    Block,
    Context,
    Run,
    _failed,
    _phase_metrics,
    _run_id,
    run_job,
    running,
)
from bench.servers import Server, migrate

logger = logging.getLogger(__name__)

TYPING_COLUMNS = ("quiet", "typing", "messages")
TYPING_METRICS = (
    "server_cpu_pct",
    "server_cpu_net_pct",
    "typing_sent",
    "typing_delivered_per_s",
    "delivered_per_s",
    "p99_ms",
    "loss_pct",
    "errors",
    "loadgen_cpu_pct",
    "other_cpu_pct",
)
MESSAGE_SENDERS = 10


def typing(ctx: Context) -> None:
    o = ctx.options
    title = (
        f"typing: {o.typing_members} signed-in sockets in general;"
        f" {o.typing_typers} typing every 2-3 s (measured from 6 s in, over at least 6 s), then"
        f" {o.typing_rate:g} msg/s, then quiet, {o.duration:g} s each;"
        " target: typing/messages server CPU < 0.10"
    )
    ratios = (("typing", "messages"),)
    ctx.block(Block("typing", "", title, TYPING_COLUMNS, TYPING_METRICS, ratios))
    db = ctx.scratch / "typing.db"
    tokens = seed_accounts(db, o.typing_members)
    with running(ctx, ["chat"], db_path=db) as servers:
        chat = servers["chat"]
        for rep in range(o.reps):
            for run in _typing_runs(ctx, chat, rep, tokens):
                ctx.record(run)


def _typing_runs(ctx: Context, chat: Server, rep: int, tokens: list[str]) -> list[Run]:
    o = ctx.options
    job: dict[str, Any] = {
        "kind": "typing",
        "url": chat.ws_url,
        "server_pid": chat.pid,
        "clients": o.typing_members,
        "tokens": tokens,
        "room": "general",
        "typers": o.typing_typers,
        "senders": MESSAGE_SENDERS,
        "rate": o.typing_rate,
        "warmup": o.warmup,
        "duration": o.duration,
        "drain": o.drain,
        "run_id": _run_id(),
    }
    limit = 60 + o.typing_members / 20 + 3 * (o.warmup + o.duration + 3) + o.drain
    result = run_job(ctx, chat, job, limit=limit)
    if "error" in result:
        return [
            Run("typing", "", column, rep, _failed(result, TYPING_METRICS), result)
            for column in TYPING_COLUMNS
        ]
    phases = result["phases"]
    quiet = float(phases["quiet"]["server_cpu_pct"])
    runs = []
    for column in TYPING_COLUMNS:
        phase = phases[column]
        metrics = {
            key: float(phase[key]) if key in phase else math.nan
            for key in TYPING_METRICS
            if key not in ("errors", "server_cpu_net_pct")
        }
        metrics["server_cpu_net_pct"] = float(phase["server_cpu_pct"]) - quiet
        metrics["errors"] = float(sum(phase.get("errors", {}).values()))
        runs.append(Run("typing", "", column, rep, metrics, {"phase": phase}))
    return runs


# --------------------------------------------------------------------------- presence churn

CHURN_METRICS = (
    "p50_ms",
    "p99_ms",
    "max_ms",
    "loss_pct",
    "delivered_per_s",
    "churn_connects_per_s",
    "churn_failures",
    "disconnects",
    "errors",
    "connect_s",
    "loadgen_cpu_pct",
    "server_cpu_pct",
    "other_cpu_pct",
)


def seed_churn(
    db_path: Path, *, base: int, bystanders: int, pool: int
) -> tuple[list[str], list[str]]:
    """``base`` accounts in general, the first ``bystanders`` of them also in `bystanders`;
    ``pool`` more in general and `lobby`. Their tokens: (base, pool)."""
    migrate(db_path)
    with seeding(db_path) as connection:
        rooms = insert_rooms(connection, ["bystanders", "lobby"], visibility="public")
        base_tokens, pool_tokens = [], []
        for index in range(base + pool):
            user_id, token = add_account(connection, f"churn{index}")
            join_room(connection, user_id, GENERAL_ID)
            if index < bystanders:
                join_room(connection, user_id, rooms["bystanders"])
            if index < base:
                base_tokens.append(token)
            else:
                join_room(connection, user_id, rooms["lobby"])
                pool_tokens.append(token)
    return base_tokens, pool_tokens


def presence_churn(ctx: Context) -> None:
    o = ctx.options
    churning = f"{o.churn_rate:g} connects/s"
    columns = ("no churn", churning)
    title = (
        f"presence churn: {o.churn_base} signed-in sockets; {o.churn_room} of them in a room"
        f" getting {o.churn_msg_rate:g} msg/s and watching the presence of a room of"
        f" {o.churn_pool}, whose members connect {o.churn_rate:g}/s for {o.churn_lifetime:g} s"
        f" each; {o.duration:g} s; target: p99 {churning}/no churn <= 1.2"
    )
    ctx.block(Block("presence-churn", "", title, columns, CHURN_METRICS, ((churning, "no churn"),)))
    db = ctx.scratch / "churn.db"
    base, pool = seed_churn(db, base=o.churn_base, bystanders=o.churn_room, pool=o.churn_pool)
    # 10,000 signed-in sockets take minutes to open here: opened once, measured --reps times.
    with running(ctx, ["chat"], db_path=db) as servers:
        chat = servers["chat"]
        job: dict[str, Any] = {
            "kind": "churn",
            "url": chat.ws_url,
            "server_pid": chat.pid,
            "clients": o.churn_base,
            "tokens": base,
            "bystanders": o.churn_room,
            "room": "bystanders",
            "watch": "lobby",
            "senders": MESSAGE_SENDERS,
            "rate": o.churn_msg_rate,
            "churn_tokens": pool,
            "churn_rate": o.churn_rate,
            "lifetime": o.churn_lifetime,
            "repeats": o.reps,
            "warmup": o.warmup,
            "duration": o.duration,
            "drain": o.drain,
            "run_id": _run_id(),
        }
        phase_s = o.churn_lifetime + 2 * (o.warmup + o.duration + o.drain) + 40
        result = run_job(ctx, chat, job, limit=60 + o.churn_base / 20 + o.reps * phase_s)
    for rep in range(o.reps):
        for column, key in zip(columns, ("quiet", "churn"), strict=True):
            ctx.record(_churn_run(result, key, column, rep))


def _churn_run(result: dict[str, Any], key: str, column: str, rep: int) -> Run:
    if "error" in result:
        return Run("presence-churn", "", column, rep, _failed(result, CHURN_METRICS), result)
    phase = result["phases"][rep][key]
    metrics = _phase_metrics(result, phase)
    del metrics["acked_per_s"]
    metrics["connect_s"] = float(result["connect_s"])
    metrics["churn_connects_per_s"] = float(phase.get("churn_connects_per_s", 0.0))
    metrics["churn_failures"] = float(phase.get("churn_failures", 0))
    details = {k: v for k, v in result.items() if k != "phases"}
    return Run("presence-churn", "", column, rep, metrics, {**details, "phase": phase})
