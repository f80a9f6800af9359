"""What accounts cost: the fan-out during a storm of sign-ins, and a signed-in socket's memory.

* `signin-storm`: one chat server, 1,000 guests receiving paced messages (`fanout-fixed`'s
  load at its lowest rate), measured without and then with `--signin-rate` password sign-ins per
  second (`POST /api/auth/login`, argon2id verification) running alongside, alternating in every
  repetition. If hashing ran on the event loop, every sign-in would stall every delivery; it runs
  in a small thread pool, so what remains is the CPU it takes from a 2-core machine.
* `idle-accounts`: server RSS growth per idle connection, guests against sockets signed in with
  a personal API token each (one account per socket, every account a member of `general`), a
  fresh server per measurement on copies of one seeded database.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.dbtools import seeding
from bench.scenarios import (
    FANOUT_METRICS,
    IDLE_METRICS,
    Block,
    Context,
    Run,
    _failed,
    _fanout,
    _fanout_runs,
    running,
)
from bench.servers import Server, ServerError, migrate
from bench.stats import percentile

SIGNIN_METRICS = (
    *FANOUT_METRICS,
    "signins_per_s",
    "signin_p99_ms",
    "signins_refused_busy",
    "signin_failures",
)
BENCH_USERNAME = "bench"
BENCH_PASSWORD = "bench-password-not-common-7"  # a throw-away benchmark account
SIGNIN_WORKERS = 8
TOKEN_PREFIX = "chat_pat_"  # chat.auth.secrets: tokens are recognised by it
GENERAL_ID = 1  # the rooms migration creates general with this id
SEEDED_AT = "2026-01-01 00:00:00.000000"  # created_at in the text format SQLAlchemy stores


# --------------------------------------------------------------------------- sign-in storm


@dataclass
class SigninLoad:
    """Paced password sign-ins from a thread pool, for as long as a measurement lasts."""

    base_url: str
    rate: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _one(self, client: httpx.Client) -> None:
        started = time.monotonic()
        try:
            status = client.post(
                "/api/auth/login", json={"username": BENCH_USERNAME, "password": BENCH_PASSWORD}
            ).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.statuses[status] += 1
            if status == 200:
                self.latencies_ms.append((time.monotonic() - started) * 1000)

    def run(self) -> None:
        interval = 1.0 / self.rate
        # The pool is closed before the client: sign-ins still running finish; queued ones
        # (when the server is slower than the rate) are dropped, not counted as failures.
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            pool = ThreadPoolExecutor(SIGNIN_WORKERS)
            try:
                next_at = time.monotonic()
                while not self._stop.is_set():
                    pool.submit(self._one, client)
                    next_at += interval
                    self._stop.wait(max(0.0, next_at - time.monotonic()))
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        self._stop.set()


@contextlib.contextmanager
def signing_in(base_url: str, rate: float) -> Iterator[SigninLoad]:
    load = SigninLoad(base_url, rate)
    thread = threading.Thread(target=load.run, name="sign-ins", daemon=True)
    thread.start()
    try:
        yield load
    finally:
        load.stop()
        thread.join(timeout=60)


def register_bench_user(server: Server) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{server.port}/api/auth/register",
        json={"username": BENCH_USERNAME, "password": BENCH_PASSWORD},
        timeout=30,
    )
    if response.status_code != 201:
        raise ServerError(f"registering the bench user: {response.status_code} {response.text}")


def signin_storm(ctx: Context) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per sign-in
    o = ctx.options
    rate = min(o.fixed_rates)
    storm = f"{o.signin_rate:g} sign-ins/s"
    columns = ("quiet", storm)
    title = (
        f"fan-out during sign-ins: {o.fixed_clients} clients, {o.fixed_senders} senders,"
        f" {rate:g} msg/s, {o.fixed_duration:g} s, no deflate; quiet vs {storm} alongside"
    )
    ctx.block(Block("signin-storm", "", title, columns, SIGNIN_METRICS, ((storm, "quiet"),)))
    with running(ctx, ["chat"]) as servers:
        chat = servers["chat"]
        register_bench_user(chat)
        for rep in range(o.reps):
            ctx.record(_storm_run(ctx, chat, rep, column="quiet", rate=rate, signins=0.0))
            ctx.record(_storm_run(ctx, chat, rep, column=storm, rate=rate, signins=o.signin_rate))


def _storm_run(
    ctx: Context, chat: Server, rep: int, *, column: str, rate: float, signins: float
) -> Run:
    o = ctx.options
    with contextlib.ExitStack() as stack:
        load = None
        if signins > 0:
            load = stack.enter_context(signing_in(f"http://127.0.0.1:{chat.port}", signins))
        started = time.monotonic()
        result = _fanout(
            ctx,
            chat,
            clients=o.fixed_clients,
            senders=o.fixed_senders,
            window=0,
            compression=None,
            rates=[rate],
            duration=o.fixed_duration,
        )
        seconds = time.monotonic() - started
    runs = _fanout_runs("signin-storm", chat, rep, result, variant="")
    run = runs[0]
    run.server = column
    run.variant = ""
    done = load.latencies_ms if load else []
    run.metrics["signins_per_s"] = len(done) / seconds if load else 0.0
    run.metrics["signin_p99_ms"] = percentile(sorted(done), 99) if done else 0.0
    statuses = load.statuses if load else Counter[int]()
    run.metrics["signins_refused_busy"] = float(statuses[503])
    run.metrics["signin_failures"] = float(sum(statuses.values()) - len(done) - statuses[503])
    if load:
        run.details["signin_statuses"] = dict(load.statuses)
    return run


# --------------------------------------------------------------------------- idle memory


def seed_accounts(db_path: Path, count: int) -> list[str]:
    """Migrate ``db_path`` and add ``count`` accounts, each with an API token and a membership
    of general, written directly (argon2 for thousands of accounts would take minutes).
    Returns the tokens."""
    migrate(db_path)
    tokens = []
    with seeding(db_path) as connection:
        for index in range(count):
            user_id, token = add_account(connection, f"idle{index}")
            join_room(connection, user_id, GENERAL_ID)
            tokens.append(token)
    return tokens


def add_account(connection: sqlite3.Connection, username: str) -> tuple[int, str]:
    """Insert an account with an API token, as chat stores them; its id and the token."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user_id = connection.execute(
        "INSERT INTO users (username, display_name, display_key, role, disabled,"
        " created_at) VALUES (?, ?, ?, 'member', 0, ?)",
        (username, username, username, SEEDED_AT),
    ).lastrowid
    assert user_id is not None
    connection.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, hint, created_at)"
        " VALUES (?, 'bench', ?, ?, ?)",
        (user_id, hashlib.sha256(token.encode()).hexdigest(), token[:13], SEEDED_AT),
    )
    return user_id, token


def join_room(connection: sqlite3.Connection, user_id: int, room_id: int) -> None:
    connection.execute(
        "INSERT INTO memberships (room_id, user_id, role, joined_at, last_read_id)"
        " VALUES (?, ?, 'member', ?, 0)",
        (room_id, user_id, SEEDED_AT),
    )


def idle_accounts(ctx: Context) -> None:
    o = ctx.options
    columns = ("guest", "signed-in")
    title = (
        f"idle memory: server RSS growth per connection, {o.idle_clients} idle, no deflate;"
        " guests vs one account (API token) per socket"
    )
    ctx.block(Block("idle-accounts", "", title, columns, IDLE_METRICS, (("signed-in", "guest"),)))
    seeded = ctx.scratch / "accounts.db"
    tokens = seed_accounts(seeded, o.idle_clients + 1)
    for rep in range(o.reps):
        for column in columns:
            db = ctx.scratch / f"accounts-{column}-{rep}.db"
            shutil.copyfile(seeded, db)
            ctx.record(_idle_run(ctx, db, rep, column, tokens if column == "signed-in" else []))


def _idle_run(ctx: Context, db: Path, rep: int, column: str, tokens: list[str]) -> Run:
    o = ctx.options
    with running(ctx, ["chat"], db_path=db) as servers:
        server = servers["chat"]
        job: dict[str, Any] = {
            "kind": "idle",
            "url": server.ws_url,
            "server_pid": server.pid,
            "clients": o.idle_clients,
            "compression": None,
            "settle": o.settle,
            "tokens": tokens,
        }
        try:
            result = ctx.loadgen.run(job, limit=60 + o.idle_clients / 50)
        except ServerError as error:
            result = {"error": str(error)}
        server.check_alive()
    if "error" in result:
        return Run("idle-accounts", "", column, rep, _failed(result, IDLE_METRICS), result)
    metrics = {key: float(result[key]) for key in IDLE_METRICS}
    return Run("idle-accounts", "", column, rep, metrics, result)
