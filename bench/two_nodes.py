"""One node versus two nodes behind Redis and PostgreSQL, in one run.

    python -m bench.two_nodes            # about a minute on 2 cores
    python -m bench.two_nodes --clients 1000 --rate 20 --deflate   # a big room at a fixed rate
    python -m bench.two_nodes --help

Every column is real `python -m chat` processes on one fresh PostgreSQL database (created as
`chat_bench_<random>`, migrated by Alembic, dropped at the end), fanning out through Redis on a
channel of this run:

* `1 node`: one process; its clients all connect to it;
* `2 nodes`: two processes; clients alternate between them, and so do the senders, so half of
  every sender's audience is on the other node;
* `1 node memory`: one process with `CHAT_BROADCAST_URL=memory://`, for the cost of Redis itself.

The load is the harness's `fanout-max` (bench/loadgen.py, run in this process): `--clients`
sockets, `--senders` of them each keeping `--window` messages in flight; with `--rate` it is
`fanout-fixed` instead (that many messages/s in total, paced). Reported per column:
deliveries per second summed over all clients, p50/p99 delivery latency, lost deliveries, and
CPU (this load generator, everything else on the machine: servers, PostgreSQL and Redis).
Columns alternate over `--reps` repetitions; a cell is the median with (min-max).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.loadgen import Clients, FanOut, close_clients, open_clients, run_phase
from bench.scenarios import BENCH_CHAT_ENV
from bench.servers import REPO_ROOT, Server, start_server
from bench.stats import ratio, summarize

COLUMNS = ("1 node", "2 nodes", "1 node memory")
METRICS = ("delivered_per_s", "p50_ms", "p99_ms", "lost", "loadgen_cpu_pct", "other_cpu_pct")
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.two_nodes", description=__doc__)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CHAT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
        help="server to create the scratch database on (default %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="default %(default)s",
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--window", type=int, default=10, help="messages in flight per sender")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="send this many messages/s in total, paced (fanout-fixed), instead of a window",
    )
    parser.add_argument("--deflate", action="store_true", help="clients offer permessage-deflate")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--drain", type=float, default=10.0)
    return parser


def _dsn(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _with_database(url: str, name: str) -> str:
    return f"{url.rpartition('/')[0]}/{name}"


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    name = f"chat_bench_{secrets.token_hex(6)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = _with_database(admin_url, name)
    try:
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO_ROOT,
            env={**os.environ, "CHAT_DATABASE_URL": url},
            capture_output=True,
            check=True,
            timeout=120,
        )
        yield url
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def start_nodes(
    count: int, *, scratch: Path, database_url: str, broadcast_url: str, channel: str
) -> list[Server]:
    env = {
        **BENCH_CHAT_ENV,
        "CHAT_DATABASE_URL": database_url,
        "CHAT_BROADCAST_URL": broadcast_url,
        "CHAT_BROADCAST_CHANNEL": channel,
    }
    nodes: list[Server] = []
    try:
        for _ in range(count):
            # db_path only tells the harness not to create a SQLite file; the URL above wins.
            nodes.append(start_server("chat", scratch=scratch, db_path=scratch, chat_extra_env=env))
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


async def open_spread(urls: Sequence[str], count: int, compression: str | None) -> Clients:
    """`count` sockets, alternating over `urls`: client i (and sender i) is on node i % n."""
    groups = [
        await open_clients(url, len(range(i, count, len(urls))), compression)
        for i, url in enumerate(urls)
    ]
    merged = Clients()
    for i in range(max(len(group.sockets) for group in groups)):
        for group in groups:
            if i < len(group.sockets):
                merged.add(group.sockets[i])
    for index, client in enumerate(merged.sockets):
        client.index = index
    for group in groups:
        merged.connect_errors.update(group.connect_errors)
    return merged


async def measure(nodes: list[Server], args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    compression = "deflate" if args.deflate else None
    clients = await open_spread([node.ws_url for node in nodes], args.clients, compression)
    if len(clients.sockets) < args.clients:
        await close_clients(clients)
        raise RuntimeError(f"only {len(clients.sockets)} of {args.clients} clients connected")
    fanout = FanOut(clients, args.senders, args.window)
    job = {"warmup": args.warmup, "duration": args.duration, "drain": args.drain}
    try:
        result = await run_phase(fanout, job, prefix=f"{run_id}:", rate=args.rate)
    finally:
        await fanout.stop()
    result["disconnects"] = dict(clients.closes)
    return result


def _cell(values: list[float]) -> str:
    summary = summarize(values)
    return f"{summary['median']:,.1f} ({summary['min']:,.1f}-{summary['max']:,.1f})"


def report(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {
        column: {metric: summarize([run[metric] for run in runs[column]]) for metric in METRICS}
        for column in COLUMNS
    }
    width = max(len(m) for m in METRICS) + 2
    print(f"\n{'':{width}}" + "".join(f"{column:>30}" for column in COLUMNS))
    for metric in METRICS:
        cells = "".join(f"{_cell([run[metric] for run in runs[c]]):>30}" for c in COLUMNS)
        print(f"{metric:{width}}{cells}")
    ratios = {
        "delivered_per_s 2 nodes / 1 node": ratio(
            medians["2 nodes"]["delivered_per_s"]["median"],
            medians["1 node"]["delivered_per_s"]["median"],
        ),
        "p99_ms 2 nodes / 1 node": ratio(
            medians["2 nodes"]["p99_ms"]["median"], medians["1 node"]["p99_ms"]["median"]
        ),
        "delivered_per_s 1 node redis / 1 node memory": ratio(
            medians["1 node"]["delivered_per_s"]["median"],
            medians["1 node memory"]["delivered_per_s"]["median"],
        ),
    }
    print()
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    return {"medians": medians, "ratios": ratios}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    channel = f"chat_bench_{secrets.token_hex(6)}"
    runs: dict[str, list[dict[str, Any]]] = {column: [] for column in COLUMNS}
    with (
        tempfile.TemporaryDirectory(prefix="two-nodes-") as scratch_dir,
        scratch_database(args.postgres_url) as database_url,
    ):
        scratch = Path(scratch_dir)
        setups = {
            "1 node": (1, args.redis_url),
            "2 nodes": (2, args.redis_url),
            "1 node memory": (1, "memory://"),
        }
        nodes = {
            column: start_nodes(
                count,
                scratch=scratch,
                database_url=database_url,
                broadcast_url=url,
                channel=f"{channel}_{index}",
            )
            for index, (column, (count, url)) in enumerate(setups.items())
        }
        try:
            for rep in range(args.reps):
                for column in COLUMNS:
                    run_id = f"r{rep}{COLUMNS.index(column)}"
                    result = asyncio.run(measure(nodes[column], args, run_id))
                    runs[column].append(result)
                    print(
                        f"rep {rep + 1} {column:>14}: {result['delivered_per_s']:>9,.0f} "
                        f"deliveries/s, p99 {result['p99_ms']:,.1f} ms, lost {result['lost']}",
                        flush=True,
                    )
        finally:
            for servers in nodes.values():
                for server in servers:
                    server.stop()
    summary = report(runs)
    load = os.getloadavg()
    # Other processes on the machine show up in other_cpu_pct and in the spread of every cell.
    averages = " ".join(f"{value:.1f}" for value in load)
    print(f"load average at the end: {averages} ({os.cpu_count()} CPUs)")
    summary["loadavg"] = load
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"two_nodes-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"options": vars(args), "runs": runs, **summary}, indent=2))
    print(f"\nwritten to {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
