"""What the live features cost: typing indicators, and presence while sockets come and go.

* `typing`: `--typing-members` signed-in sockets (1,000; one account each, every one a member of
  `general`), and on the same sockets, one after another in every repetition:
  `--typing-typers` of them (50) sending `{"type": "typing", "room": "general"}` every 2-3 s
  (`typing`), `--typing-rate` messages per second (20) from 10 of them (`messages`), and nothing
  (`quiet`). The server's CPU in each; the figure is typing/messages (target: under 0.10), also
  net of `quiet`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from bench.accounts import seed_accounts
from bench.scenarios import Block, Context, Run, _failed, _run_id, run_job, running
from bench.servers import Server

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
        f"typing: {o.typing_members} signed-in sockets in general; quiet, then"
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
