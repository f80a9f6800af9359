"""The scenarios. Each alternates its servers (A B C D, A B C D, ...) over the repetitions."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.dbtools import build_history, count_messages
from bench.driver import LoadGenerator
from bench.servers import REPO_ROOT, Server, ServerError, migrate, start_server

logger = logging.getLogger(__name__)

COMPRESSIONS: tuple[tuple[str, str | None], ...] = (("deflate", "deflate"), ("no deflate", None))
PEER_RATIOS = (
    ("chat", "tornado"),
    ("chat", "naive"),
    ("chat", "ceiling"),
    ("chat-metrics", "chat"),  # what the metrics cost: 1.00 is free
    ("chat", "chat-base"),  # a regression check against another revision: 1.00 is unchanged
)
FANOUT_METRICS = (
    "delivered_per_s",
    "acked_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "loss_pct",
    "lost",
    "disconnects",
    "connect_failures",
    "errors",
    "loadgen_cpu_pct",
    "server_cpu_pct",
    "other_cpu_pct",
)


@dataclass(frozen=True)
class Options:
    servers: tuple[str, ...]
    scenarios: tuple[str, ...]
    reps: int
    warmup: float
    duration: float
    drain: float
    fanout_clients: int
    fanout_senders: int
    window: int
    fixed_clients: int
    fixed_senders: int
    fixed_rates: tuple[float, ...]
    fixed_duration: float
    idle_clients: int
    settle: float
    write_clients: int
    write_window: int
    post_clients: int
    history_rows: tuple[int, ...]
    history_concurrency: int
    history_limit: int
    sqlite_synchronous: str
    chat_env: dict[str, str]
    signin_rate: float = 20.0
    rooms_clients: int = 10_000
    rooms_count: int = 1000
    rooms_rate: float = 200.0
    rooms_compression: str | None = None
    catchup_messages: int = 1_000_000
    catchup_rooms: int = 200
    catchup_concurrency: int = 1
    typing_members: int = 1000
    typing_typers: int = 50
    typing_rate: float = 20.0
    churn_base: int = 10_000
    churn_room: int = 100
    churn_pool: int = 400
    churn_rate: float = 500.0
    churn_lifetime: float = 1.0
    churn_msg_rate: float = 20.0
    base_tree: Path | None = None


@dataclass
class Run:
    """One measurement: a server (or a storage variant) in one repetition of one scenario."""

    scenario: str
    variant: str
    server: str
    rep: int
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Block:
    """How a scenario variant is shown: its columns, metrics and ratios, in order."""

    scenario: str
    variant: str
    title: str
    columns: tuple[str, ...]
    metrics: tuple[str, ...]
    ratios: tuple[tuple[str, str], ...]


@dataclass
class Context:
    options: Options
    scratch: Path
    loadgen: LoadGenerator
    runs: list[Run] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    server_logs: list[dict[str, Any]] = field(default_factory=list)

    def record(self, run: Run) -> None:
        self.runs.append(run)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in run.metrics.items())
        logger.info("%s | %s | %s #%d | %s", run.scenario, run.variant, run.server, run.rep, shown)
        if "error" in run.details:
            logger.warning("  error: %s", run.details["error"])

    def block(self, block: Block) -> None:
        if not any(
            b.scenario == block.scenario and b.variant == block.variant for b in self.blocks
        ):
            self.blocks.append(block)


def _short(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@contextlib.contextmanager
def running(ctx: Context, names: Sequence[str], **kwargs: Any) -> Iterator[dict[str, Server]]:
    """Start ``names`` (one process each) and stop them all on the way out, whatever happens."""
    servers: dict[str, Server] = {}
    try:
        for name in names:
            servers[name] = start_server(
                name,
                scratch=ctx.scratch,
                chat_extra_env=chat_env(ctx.options),
                base_tree=ctx.options.base_tree,
                **kwargs,
            )
        yield servers
    finally:
        for server in servers.values():
            server.stop()
            findings = server.log_findings()
            ctx.server_logs.append({"server": server.name, "log": str(server.log_path), **findings})


# All load comes from 127.0.0.1 and is meant to be heavy: chat's abuse limits (per-connection
# and per-address rates, connections per address) would measure the limiter, not the server.
UNLIMITED = "1000000"
BENCH_CHAT_ENV = {
    "CHAT_SOCKET_RATE": UNLIMITED,
    "CHAT_SOCKET_BURST": UNLIMITED,
    "CHAT_POST_RATE": UNLIMITED,
    "CHAT_POST_BURST": UNLIMITED,
    "CHAT_MAX_CONNECTIONS": UNLIMITED,
    "CHAT_MAX_CONNECTIONS_PER_ADDRESS": UNLIMITED,
}


def chat_env(options: Options) -> dict[str, str]:
    return {"CHAT_SQLITE_SYNCHRONOUS": options.sqlite_synchronous, **options.chat_env}


def _run_id() -> str:
    return uuid.uuid4().hex[:6]


HTTP_JOBS = ("history", "post", "get")  # bench.loadgen.http_job: one result, no phases


def run_job(ctx: Context, server: Server, job: dict[str, Any], *, limit: float) -> dict[str, Any]:
    """A load generator job against ``server``; a failure comes back as ``{"error": ...}``
    (and a WebSocket job without ``phases`` as one too), a server that died raises."""
    try:
        result = ctx.loadgen.run(job, limit=limit)
    except ServerError as error:
        result = {"error": str(error)}
    server.check_alive()
    if "error" not in result and "phases" not in result and job["kind"] not in HTTP_JOBS:
        result["error"] = "no phases"
    return result


def _failed(details: dict[str, Any], metrics: Sequence[str]) -> dict[str, float]:
    logger.warning("measurement failed: %s", details.get("error"))
    return dict.fromkeys(metrics, math.nan)


# --------------------------------------------------------------------------- fan-out


def _fanout(
    ctx: Context,
    server: Server,
    *,
    clients: int,
    senders: int,
    window: int,
    compression: str | None,
    rates: Sequence[float] | None,
    duration: float,
) -> dict[str, Any]:
    o = ctx.options
    job = {
        "kind": "fanout",
        "url": server.ws_url,
        "server_pid": server.pid,
        "clients": clients,
        "senders": senders,
        "window": window,
        "compression": compression,
        "rates": list(rates) if rates else None,
        "warmup": o.warmup,
        "duration": duration,
        "drain": o.drain,
        "run_id": _run_id(),
    }
    phases = len(rates) if rates else 1
    limit = 30 + clients / 50 + phases * (o.warmup + duration + o.drain + 5)
    try:
        result = ctx.loadgen.run(job, limit=limit)
    except ServerError as error:
        result = {"error": str(error)}
    server.check_alive()
    return result


def _phase_metrics(result: dict[str, Any], phase: dict[str, Any]) -> dict[str, float]:
    counted = ("disconnects", "connect_failures", "errors")
    metrics = {key: float(phase[key]) for key in FANOUT_METRICS if key not in counted}
    metrics["disconnects"] = float(sum(result.get("disconnects", {}).values()))
    metrics["connect_failures"] = float(sum(result.get("connect_errors", {}).values()))
    metrics["errors"] = float(sum(phase.get("errors", {}).values()))
    return metrics


def _fanout_runs(
    scenario: str, server: Server, rep: int, result: dict[str, Any], *, variant: str
) -> list[Run]:
    if "error" in result or "phases" not in result:
        details = {"error": result.get("error", "no phases"), **result}
        return [Run(scenario, variant, server.name, rep, _failed(details, FANOUT_METRICS), details)]
    runs = []
    for phase in result["phases"]:
        label = variant if phase["rate"] is None else f"{phase['rate']:g} msg/s, {variant}"
        details = {
            "connected": result["connected"],
            "connect_errors": result["connect_errors"],
            "disconnect_codes": result.get("disconnects", {}),
            "phase": phase,
        }
        runs.append(Run(scenario, label, server.name, rep, _phase_metrics(result, phase), details))
    return runs


def fanout_max(ctx: Context) -> None:
    o = ctx.options
    title = (
        f"fan-out at max rate: {o.fanout_clients} clients, {o.fanout_senders} senders, "
        f"window {o.window}, {o.duration:g} s"
    )
    with running(ctx, o.servers) as servers:
        for variant, compression in COMPRESSIONS:
            ctx.block(_peer_block("fanout-max", variant, f"{title}, {variant}", o, FANOUT_METRICS))
            for rep in range(o.reps):
                for server in servers.values():
                    result = _fanout(
                        ctx,
                        server,
                        clients=o.fanout_clients,
                        senders=o.fanout_senders,
                        window=o.window,
                        compression=compression,
                        rates=None,
                        duration=o.duration,
                    )
                    for run in _fanout_runs("fanout-max", server, rep, result, variant=variant):
                        ctx.record(run)


def fanout_fixed(ctx: Context) -> None:
    o = ctx.options
    metrics = tuple(m for m in FANOUT_METRICS if m not in ("delivered_per_s", "acked_per_s"))
    with running(ctx, o.servers) as servers:
        for variant, compression in COMPRESSIONS:
            for rate in o.fixed_rates:
                title = (
                    f"fan-out at fixed load: {o.fixed_clients} clients, {o.fixed_senders} senders,"
                    f" {rate:g} msg/s in total, {o.fixed_duration:g} s, {variant}"
                )
                label = f"{rate:g} msg/s, {variant}"
                ctx.block(_peer_block("fanout-fixed", label, title, o, metrics))
            for rep in range(o.reps):
                for server in servers.values():
                    result = _fanout(
                        ctx,
                        server,
                        clients=o.fixed_clients,
                        senders=o.fixed_senders,
                        window=0,
                        compression=compression,
                        rates=o.fixed_rates,
                        duration=o.fixed_duration,
                    )
                    for run in _fanout_runs("fanout-fixed", server, rep, result, variant=variant):
                        ctx.record(run)


def _peer_block(
    scenario: str, variant: str, title: str, o: Options, metrics: Sequence[str]
) -> Block:
    ratios = tuple(pair for pair in PEER_RATIOS if set(pair) <= set(o.servers))
    return Block(scenario, variant, title, o.servers, tuple(metrics), ratios)


# --------------------------------------------------------------------------- idle memory

IDLE_METRICS = ("kib_per_conn", "rss_before_mb", "rss_after_mb", "connected")


def idle_memory(ctx: Context) -> None:
    """A fresh server for every measurement: a second round of connections on the same
    process reuses the memory the first round freed, and would measure almost nothing."""
    o = ctx.options
    for variant, compression in COMPRESSIONS:
        title = f"idle memory: server RSS growth per connection, {o.idle_clients} idle, {variant}"
        ctx.block(_peer_block("idle", variant, title, o, IDLE_METRICS))
        for rep in range(o.reps):
            for name in o.servers:
                with running(ctx, [name]) as servers:
                    server = servers[name]
                    job = {
                        "kind": "idle",
                        "url": server.ws_url,
                        "server_pid": server.pid,
                        "clients": o.idle_clients,
                        "compression": compression,
                        "settle": o.settle,
                    }
                    try:
                        result = ctx.loadgen.run(job, limit=60 + o.idle_clients / 50)
                    except ServerError as error:
                        result = {"error": str(error)}
                    server.check_alive()
                if "error" in result:
                    metrics = _failed(result, IDLE_METRICS)
                else:
                    metrics = {key: float(result[key]) for key in IDLE_METRICS}
                ctx.record(Run("idle", variant, name, rep, metrics, result))


# --------------------------------------------------------------------------- durable writes

WRITE_METRICS = (
    "stored_per_s",
    "p50_ms",
    "p99_ms",
    "unconfirmed",
    "errors",
    "loadgen_cpu_pct",
    "server_cpu_pct",
)
RAW_BATCHES = (1, 100)


def durable_writes(ctx: Context) -> None:
    o = ctx.options
    raw_columns = tuple(f"raw {batch}/commit" for batch in RAW_BATCHES)
    title = (
        f"durable writes, {o.duration:g} s: chat = {o.write_clients} WebSockets each sending as"
        f" acks come back (window {o.write_window}; every message is also fanned out to all"
        f" {o.write_clients}); chat http = {o.post_clients} keep-alive POST /api/messages loops;"
        f" raw = sqlite3 inserts into the same schema in one process;"
        f" WAL, synchronous={o.sqlite_synchronous}"
    )
    columns = ("chat", "chat http", *raw_columns)
    ratios = tuple((chat, raw) for chat in columns[:2] for raw in raw_columns)
    ctx.block(Block("write", "", title, columns, WRITE_METRICS, ratios))
    raw_dbs = {batch: ctx.scratch / f"raw-{batch}.db" for batch in RAW_BATCHES}
    for db in raw_dbs.values():
        migrate(db)
    with running(ctx, ["chat"]) as servers:
        chat = servers["chat"]
        for rep in range(o.reps):
            ctx.record(_chat_write_run(ctx, chat, rep))
            ctx.record(_chat_post_run(ctx, chat, rep))
            for batch, db in raw_dbs.items():
                ctx.record(_raw_write_run(ctx, db, batch, rep))


def _chat_write_run(ctx: Context, chat: Server, rep: int) -> Run:
    o = ctx.options
    assert chat.db_path is not None
    before = count_messages(chat.db_path)
    result = _fanout(
        ctx,
        chat,
        clients=o.write_clients,
        senders=o.write_clients,
        window=o.write_window,
        compression=None,
        rates=None,
        duration=o.duration,
    )
    added = count_messages(chat.db_path) - before
    if "error" in result or "phases" not in result:
        return Run("write", "", "chat", rep, _failed(result, WRITE_METRICS), result)
    phase = result["phases"][0]
    metrics = {
        "stored_per_s": float(phase["acked_per_s"]),
        "p50_ms": float(phase["p50_ms"]),
        "p99_ms": float(phase["p99_ms"]),
        # Acknowledged messages that are not in the database (should be 0), or the reverse.
        "unconfirmed": float(phase["sent"] - phase["rejected"] - added),
        "errors": float(sum(phase["errors"].values())),
        "loadgen_cpu_pct": float(phase["loadgen_cpu_pct"]),
        "server_cpu_pct": float(phase["server_cpu_pct"]),
    }
    return Run("write", "", "chat", rep, metrics, {"db_rows_added": added, "phase": phase})


def _chat_post_run(ctx: Context, chat: Server, rep: int) -> Run:
    o = ctx.options
    assert chat.db_path is not None
    before = count_messages(chat.db_path)
    job = {
        "kind": "post",
        "host": "127.0.0.1",
        "port": chat.port,
        "server_pid": chat.pid,
        "run_id": _run_id(),
        "concurrency": o.post_clients,
        "warmup": o.warmup,
        "duration": o.duration,
    }
    try:
        result = ctx.loadgen.run(job, limit=o.warmup + o.duration + 60)
    except ServerError as error:
        result = {"error": str(error)}
    chat.check_alive()
    added = count_messages(chat.db_path) - before
    if "error" in result:
        return Run("write", "", "chat http", rep, _failed(result, WRITE_METRICS), result)
    errors = sum(result["errors"].values())
    created = result["requests"] - errors
    created += result["warmup_requests"] - sum(result["warmup_errors"].values())
    metrics = {
        "stored_per_s": float(result["ok_per_s"]),
        "p50_ms": float(result["p50_ms"]),
        "p99_ms": float(result["p99_ms"]),
        "unconfirmed": float(created - added),
        "errors": float(errors),
        "loadgen_cpu_pct": float(result["loadgen_cpu_pct"]),
        "server_cpu_pct": float(result["server_cpu_pct"]),
    }
    return Run("write", "", "chat http", rep, metrics, {"db_rows_added": added, **result})


def _raw_write_run(ctx: Context, db: Path, batch: int, rep: int) -> Run:
    o = ctx.options
    command = [sys.executable, "-m", "bench.rawsqlite", str(db), "--batch", str(batch)]
    command += ["--seconds", str(o.duration), "--synchronous", o.sqlite_synchronous]
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=o.duration + 60,
        check=False,
    )
    column = f"raw {batch}/commit"
    if completed.returncode != 0:
        details = {"error": completed.stderr[-2000:]}
        return Run("write", "", column, rep, _failed(details, WRITE_METRICS), details)
    result = json.loads(completed.stdout)
    return Run("write", "", column, rep, {"stored_per_s": float(result["rows_per_s"])}, result)


# --------------------------------------------------------------------------- history

HISTORY_METRICS = (
    "requests_per_s",
    "p50_ms",
    "p99_ms",
    "errors",
    "loadgen_cpu_pct",
    "server_cpu_pct",
)


def _rows_label(rows: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if rows >= size and rows % size == 0:
            return f"{rows // size}{suffix} rows"
    return f"{rows} rows"


def history(ctx: Context) -> None:
    o = ctx.options
    labels = {rows: _rows_label(rows) for rows in o.history_rows}
    columns = tuple(labels.values())
    title = (
        f"history: GET /api/messages?before=<random id>&limit={o.history_limit},"
        f" {o.history_concurrency} keep-alive connections, {o.duration:g} s"
    )
    ratios = tuple((columns[-1], column) for column in columns[:-1])
    ctx.block(Block("history", "", title, columns, HISTORY_METRICS, ratios))
    dbs = {}
    for rows in o.history_rows:
        dbs[rows] = ctx.scratch / f"history-{rows}.db"
        logger.info("building a %d-row history database", rows)
        build_history(dbs[rows], rows)
    with contextlib.ExitStack() as stack:
        servers = {
            rows: stack.enter_context(running(ctx, ["chat"], db_path=db))["chat"]
            for rows, db in dbs.items()
        }
        for rep in range(o.reps):
            for rows, server in servers.items():
                ctx.record(history_run(ctx, server, rows, labels[rows], rep))


def history_run(
    ctx: Context,
    server: Server,
    rows: int,
    label: str,
    rep: int,
    *,
    scenario: str = "history",
    cursor: str = "before",
) -> Run:
    o = ctx.options
    job = {
        "kind": "history",
        "cursor": cursor,
        "host": "127.0.0.1",
        "port": server.port,
        "server_pid": server.pid,
        "max_id": rows,
        "limit": o.history_limit,
        "concurrency": o.history_concurrency,
        "warmup": o.warmup,
        "duration": o.duration,
    }
    return http_run(ctx, server, job, scenario=scenario, column=label, rep=rep)


def http_run(
    ctx: Context, server: Server, job: dict[str, Any], *, scenario: str, column: str, rep: int
) -> Run:
    """Run one HTTP job of the load generator (bench.loadgen.http_job) as a column's run."""
    o = ctx.options
    result = run_job(ctx, server, job, limit=o.warmup + o.duration + 60)
    if "error" in result:
        return Run(scenario, "", column, rep, _failed(result, HISTORY_METRICS), result)
    metrics = {key: float(result[key]) for key in HISTORY_METRICS if key != "errors"}
    metrics["errors"] = float(sum(result["errors"].values()))
    return Run(scenario, "", column, rep, metrics, result)


SCENARIOS: dict[str, Callable[[Context], None]] = {
    "fanout-max": fanout_max,
    "fanout-fixed": fanout_fixed,
    "idle": idle_memory,
    "write": durable_writes,
    "history": history,
}
