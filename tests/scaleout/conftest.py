"""Fixtures for the scale-out tier: real server processes on PostgreSQL, Redis and LISTEN/NOTIFY.

Every test gets this run's PostgreSQL database emptied, and its own broadcast channel, so runs
and tests never see each other's messages. Nodes are `python -m chat` processes (the e2e tier's
ChatServer) configured by environment, as an operator would run them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.server import ChatServer
from tests.support.postgres import PostgresDatabase
from tests.support.services import REDIS_URL, PrivateRedis, free_port, redis_ping, unavailable

# The nodes are driven harder than any person could type: lift the per-client abuse limits.
GENEROUS_LIMITS = {
    "CHAT_SOCKET_RATE": "10000",
    "CHAT_SOCKET_BURST": "10000",
    "CHAT_POST_RATE": "10000",
    "CHAT_POST_BURST": "10000",
    "CHAT_MAX_CONNECTIONS_PER_ADDRESS": "10000",
}


class Node(ChatServer):
    """A `python -m chat` process; its pid names its broker connections (chat-listener-<pid>)."""

    @property
    def pid(self) -> int:
        process = self._process
        assert process is not None, "the node is not running"
        return process.pid


NodeFactory = Callable[..., Node]


@pytest.fixture(scope="session")
def redis_url() -> str:
    parts = urlsplit(REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if not redis_ping(host, port):
        unavailable(f"Redis at {REDIS_URL}", "no PONG")
    return REDIS_URL


@pytest.fixture
def channel() -> str:
    """A broadcast channel of this test alone (Redis channel and NOTIFY channel alike)."""
    return f"chat_test_{secrets.token_hex(6)}"


@pytest.fixture
def pg_url(postgres_database: PostgresDatabase) -> str:
    return postgres_database.fresh()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    try:
        redis.start()
    except FileNotFoundError as error:
        unavailable("redis-server (the executable)", error)
    try:
        yield redis
    finally:
        redis.kill()


@pytest.fixture
def make_node(tmp_path: Path, pg_url: str, channel: str) -> Iterator[NodeFactory]:
    """Start `python -m chat` processes on this test's database and channel."""
    started: list[Node] = []

    def factory(name: str, *, broadcast_url: str, **env: str) -> Node:
        workdir = tmp_path / name
        workdir.mkdir()
        node = Node(
            workdir=workdir,
            port=free_port(),
            extra_env={
                "CHAT_DATABASE_URL": pg_url,
                "CHAT_BROADCAST_URL": broadcast_url,
                "CHAT_BROADCAST_CHANNEL": channel,
                **GENEROUS_LIMITS,
                **env,
            },
        )
        node.start()
        started.append(node)
        return node

    yield factory
    for node in reversed(started):
        node.stop()
