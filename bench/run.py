"""``python -m bench``: start the servers, drive them, print the table, write the JSON."""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.accounts import idle_accounts, signin_storm
from bench.driver import LoadGenerator
from bench.live import presence_churn, typing
from bench.peers._common import raise_fd_limit
from bench.permalink import around
from bench.report import render, write_json
from bench.rooms import catchup, many_rooms
from bench.scenarios import BENCH_CHAT_ENV, SCENARIOS, Context, Options
from bench.servers import (
    CHAT_VARIANTS,
    REPO_ROOT,
    SERVER_CHOICES,
    SERVER_NAMES,
    ServerError,
    chat_available,
)

logger = logging.getLogger("bench")
# The default run keeps the scenarios every earlier result was measured with; the others are
# picked with --scenarios.
EXTRA_SCENARIOS = {
    "signin-storm": signin_storm,
    "idle-accounts": idle_accounts,
    "rooms": many_rooms,
    "catchup": catchup,
    "typing": typing,
    "presence-churn": presence_churn,
    "around": around,
}
ALL_SCENARIOS = {**SCENARIOS, **EXTRA_SCENARIOS}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"{text!r}: choose from {', '.join(allowed)} (comma-separated)"
            )
        return names

    return parse


def _numbers(kind: Callable[[str], float]) -> Callable[[str], tuple[float, ...]]:
    def parse(text: str) -> tuple[float, ...]:
        try:
            return tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None

    return parse


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("CHAT_"):
        raise argparse.ArgumentTypeError(f"{text!r} is not CHAT_NAME=value")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--servers",
        type=_names(SERVER_CHOICES),
        default=SERVER_NAMES,
        help="columns, in order (default %(default)s); chat-metrics is chat with CHAT_METRICS=true",
    )
    p.add_argument(
        "--scenarios",
        type=_names(tuple(ALL_SCENARIOS)),
        default=tuple(SCENARIOS),
        help=f"default %(default)s; also {', '.join(EXTRA_SCENARIOS)}",
    )
    p.add_argument("--reps", type=int, default=3, help="repetitions (default %(default)s)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds of load before measuring")
    p.add_argument(
        "--drain", type=float, default=6.0, help="max seconds to wait for late deliveries"
    )
    p.add_argument("--fanout-clients", type=int, default=100)
    p.add_argument("--fanout-senders", type=int, default=10)
    p.add_argument("--window", type=int, default=10, help="unacked messages per sender")
    p.add_argument("--fixed-clients", type=int, default=1000)
    p.add_argument("--fixed-senders", type=int, default=10)
    p.add_argument("--fixed-rates", type=_numbers(float), default=(20.0, 5.0), help="msgs/s")
    p.add_argument("--fixed-duration", type=float, default=2.0, help="seconds per rate")
    p.add_argument("--idle-clients", type=int, default=2000)
    p.add_argument("--settle", type=float, default=0.5, help="seconds before reading RSS")
    p.add_argument("--write-clients", type=int, default=8, help="WebSockets that send")
    p.add_argument(
        "--write-window",
        type=int,
        default=64,
        help="unacked messages per socket (chat confirms at most 64 per socket at a time)",
    )
    p.add_argument("--post-clients", type=int, default=64, help="concurrent POST loops")
    p.add_argument("--history-rows", type=_numbers(int), default=(1000, 1_000_000))
    p.add_argument("--history-concurrency", type=int, default=4)
    p.add_argument("--history-limit", type=int, default=50)
    p.add_argument(
        "--signin-rate", type=float, default=20.0, help="password sign-ins/s in signin-storm"
    )
    p.add_argument("--rooms-clients", type=int, default=10_000, help="sockets in `rooms`")
    p.add_argument("--rooms-count", type=int, default=1000, help="rooms in `rooms`")
    p.add_argument("--rooms-rate", type=float, default=200.0, help="msg/s in total in `rooms`")
    p.add_argument(
        "--rooms-compression",
        choices=("deflate", "none"),
        default="none",
        help="whether `rooms` clients offer permessage-deflate (default %(default)s)",
    )
    p.add_argument("--catchup-messages", type=int, default=1_000_000)
    p.add_argument("--catchup-rooms", type=int, default=200, help="the reader's rooms")
    p.add_argument("--catchup-concurrency", type=int, default=1, help="keep-alive connections")
    p.add_argument("--typing-members", type=int, default=1000, help="sockets in `typing`'s room")
    p.add_argument("--typing-typers", type=int, default=50)
    p.add_argument("--typing-rate", type=float, default=20.0, help="msg/s to compare typing with")
    p.add_argument("--churn-base", type=int, default=10_000, help="sockets open throughout")
    p.add_argument("--churn-room", type=int, default=100, help="bystanders measured")
    p.add_argument("--churn-pool", type=int, default=400, help="accounts that come and go")
    p.add_argument("--churn-rate", type=float, default=500.0, help="connects (and disconnects)/s")
    p.add_argument(
        "--churn-lifetime", type=float, default=1.0, help="seconds a churned socket lives"
    )
    p.add_argument("--churn-msg-rate", type=float, default=20.0, help="msg/s to the bystanders")
    p.add_argument("--sqlite-synchronous", default="FULL", choices=("NORMAL", "FULL"))
    p.add_argument(
        "--chat-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="CHAT_X=V",
        help="environment for chat (repeatable); the harness lifts chat's abuse limits",
    )
    p.add_argument(
        "--base-tree",
        type=Path,
        default=None,
        help="the work tree the chat-base column runs (git worktree add --detach DIR REV)",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 rep, 1 s, small sizes")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/)")
    p.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, databases)")
    return p


def options_from(args: argparse.Namespace) -> Options:
    if args.quick:
        args.reps, args.duration, args.fixed_duration, args.warmup = 1, 1.0, 1.0, 0.3
        args.fixed_clients = min(args.fixed_clients, 200)
        args.idle_clients = min(args.idle_clients, 300)
        args.history_rows = (1000, 20_000)
        args.rooms_clients = min(args.rooms_clients, 1000)
        args.rooms_count = min(args.rooms_count, 100)
        args.catchup_messages = min(args.catchup_messages, 20_000)
        args.typing_members = min(args.typing_members, 200)
        args.typing_typers = min(args.typing_typers, 20)
        args.churn_base = min(args.churn_base, 500)
        args.churn_rate = min(args.churn_rate, 100)
    return Options(
        servers=args.servers,
        scenarios=args.scenarios,
        reps=args.reps,
        warmup=args.warmup,
        duration=args.duration,
        drain=args.drain,
        fanout_clients=args.fanout_clients,
        fanout_senders=args.fanout_senders,
        window=args.window,
        fixed_clients=args.fixed_clients,
        fixed_senders=args.fixed_senders,
        fixed_rates=args.fixed_rates,
        fixed_duration=args.fixed_duration,
        idle_clients=args.idle_clients,
        settle=args.settle,
        write_clients=args.write_clients,
        write_window=args.write_window,
        post_clients=args.post_clients,
        history_rows=args.history_rows,
        history_concurrency=args.history_concurrency,
        history_limit=args.history_limit,
        sqlite_synchronous=args.sqlite_synchronous,
        chat_env={**BENCH_CHAT_ENV, **dict(args.chat_env)},
        signin_rate=args.signin_rate,
        rooms_clients=args.rooms_clients,
        rooms_count=args.rooms_count,
        rooms_rate=args.rooms_rate,
        rooms_compression=None if args.rooms_compression == "none" else "deflate",
        catchup_messages=args.catchup_messages,
        catchup_rooms=args.catchup_rooms,
        catchup_concurrency=args.catchup_concurrency,
        typing_members=args.typing_members,
        typing_typers=args.typing_typers,
        typing_rate=args.typing_rate,
        churn_base=args.churn_base,
        churn_room=args.churn_room,
        churn_pool=args.churn_pool,
        churn_rate=args.churn_rate,
        churn_lifetime=args.churn_lifetime,
        churn_msg_rate=args.churn_msg_rate,
        base_tree=args.base_tree.resolve() if args.base_tree else None,
    )


def needs_chat(options: Options) -> bool:
    chat_columns = set(CHAT_VARIANTS) & set(options.servers)
    chat_only = {"write", "history", *EXTRA_SCENARIOS}
    return bool(chat_columns) or bool(chat_only & set(options.scenarios))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    clock = time.monotonic()
    args = build_parser().parse_args(argv)
    options = options_from(args)
    if needs_chat(options) and not chat_available():
        logger.error("`python -m chat --help` fails: leave chat out (--servers, --scenarios)")
        return 2
    raise_fd_limit()  # inherited by the servers and the load generator
    started = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    out = args.out or RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.json"
    ctx = Context(options, scratch, LoadGenerator(scratch / "loadgen.log"))
    status = "complete"
    try:
        for name in options.scenarios:
            logger.info("scenario %s", name)
            ALL_SCENARIOS[name](ctx)
    except KeyboardInterrupt:
        status = "interrupted"
        logger.warning("interrupted: the servers are stopped, partial results follow")
    except ServerError as error:
        status = f"failed: {error}"
        logger.error("%s", error)
    finally:
        ctx.loadgen.close()
        elapsed = time.monotonic() - clock
        write_json(
            ctx,
            out,
            {
                "started": started.isoformat(),
                "elapsed_s": round(elapsed, 1),
                "status": status,
                "command": ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
                "scratch": str(scratch) if args.keep else None,
                "chat_revision": chat_revision(REPO_ROOT),
                "chat_base_revision": chat_revision(options.base_tree)
                if options.base_tree
                else None,
            },
        )
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(render(ctx))
    _print_log_findings(ctx)
    print(f"\n{status}; {elapsed:.0f} s; results in {out}")
    return 0 if status == "complete" else 1


def chat_revision(tree: Path) -> dict[str, str]:
    """The commit the servers ran from, and whether chat/ or migrations/ differed from it."""

    def git(*command: str) -> str:
        completed = subprocess.run(
            ["git", *command], cwd=tree, capture_output=True, text=True, check=False
        )
        return completed.stdout.strip()

    dirty = git("status", "--porcelain", "--", "chat", "migrations", "templates")
    return {"head": git("rev-parse", "HEAD"), "uncommitted": dirty}


def _print_log_findings(ctx: Context) -> None:
    flagged = [entry for entry in ctx.server_logs if entry.get("examples")]
    if not flagged:
        return
    print("\nServer logs with warnings or errors:")
    for entry in flagged:
        counts = {k: v for k, v in entry.items() if k not in ("server", "log", "examples", "lines")}
        print(f"  {entry['server']}: {counts}")
        for example in entry["examples"]:
            print(f"    {example}")
