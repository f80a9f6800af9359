"""What a socket connect costs: `python -m bench.connects` (see bench/README.md).

Opens and closes `--connects` WebSockets (`--concurrency` at a time) against chat, signed in
with `--tokens` API tokens in turn (as a pool of programs reconnecting), and against the naive
Starlette peer (no authentication, no rooms: the framework's own floor), in the same run. Each
server's CPU seconds per connect-and-close, read from the process before and after, and the
ratio chat/naive. Every token connects once first, so chat's figure is for reconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from websockets.asyncio.client import connect

from bench.accounts import seed_accounts
from bench.servers import Server, start_server

# chat refuses more than a few sockets from one address at a time by default.
CHAT_ENV = {"CHAT_MAX_CONNECTIONS_PER_ADDRESS": "100000"}


def server_cpu(server: Server) -> float:
    times = psutil.Process(server.pid).cpu_times()
    return float(times.user + times.system)


async def connect_and_close(
    server: Server, tokens: Iterator[str | None], count: int, at_once: int
) -> None:
    gate = asyncio.Semaphore(at_once)

    async def one(token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with (
            gate,
            connect(
                server.ws_url, origin=server.base_url, additional_headers=headers, compression=None
            ),
        ):
            pass

    await asyncio.gather(*(one(next(tokens)) for _ in range(count)))


def measure(
    server: Server, tokens: list[str] | None, args: argparse.Namespace
) -> tuple[float, float]:
    """(server CPU ms, wall ms) per connect-and-close."""
    pool: Iterator[str | None] = itertools.cycle(tokens) if tokens else itertools.repeat(None)
    warm = len(tokens) if tokens else args.concurrency
    asyncio.run(connect_and_close(server, pool, warm, args.concurrency))
    cpu, wall = server_cpu(server), time.perf_counter()
    asyncio.run(connect_and_close(server, pool, args.connects, args.concurrency))
    per = 1000 / args.connects
    return (server_cpu(server) - cpu) * per, (time.perf_counter() - wall) * per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connects", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=400)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="chat-bench-connects-"))
    try:
        db = scratch / "chat.db"
        tokens = seed_accounts(db, args.tokens)
        rows = []
        for name in ("chat", "naive"):
            server = start_server(
                name,
                scratch=scratch,
                db_path=db if name == "chat" else None,
                chat_extra_env=CHAT_ENV,
            )
            try:
                rows.append((name, *measure(server, tokens if name == "chat" else None, args)))
            finally:
                server.stop()
        print(
            f"{args.connects} connect-and-close, {args.concurrency} at a time;"
            f" chat signed in with {args.tokens} tokens in turn"
        )
        print(f"  {'server':8} {'server CPU ms each':>20} {'wall ms each':>14}")
        for name, cpu, wall in rows:
            print(f"  {name:8} {cpu:20.3f} {wall:14.3f}")
        print(f"  chat/naive server CPU: {rows[0][1] / rows[1][1]:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
