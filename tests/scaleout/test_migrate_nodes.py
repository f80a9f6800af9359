"""Several nodes started with --migrate on one new PostgreSQL database: one migrates, the others
wait for it, and all of them serve."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from chat.broadcast.postgres import asyncpg_dsn
from chat.migrate import POSTGRES_LOCK_KEY
from tests.scaleout.conftest import GENEROUS_LIMITS, Node
from tests.support.postgres import PostgresDatabase
from tests.support.services import free_port

pytestmark = pytest.mark.postgres

MIGRATED_LINE = "migrated the database from nothing"


def test_nodes_starting_together_migrate_once_and_all_serve(
    tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    url = postgres_database.extra()  # empty: never migrated
    nodes = [
        Node(
            workdir=_mkdir(tmp_path / name),
            port=free_port(),
            extra_env={
                "CHAT_DATABASE_URL": url,
                "CHAT_MIGRATE_ON_START": "true",
                **GENEROUS_LIMITS,
            },
            name=name,
        )
        for name in ("a", "b")
    ]
    try:
        asyncio.run(_start_behind_a_held_lock(url, nodes))
        for node in nodes:
            node.wait_healthy()
        migrated = [node for node in nodes if MIGRATED_LINE in node.log_path.read_text()]
        assert len(migrated) == 1, [node.log_tail() for node in nodes]
        for index, node in enumerate(nodes):
            response = httpx.post(f"{node.url}/api/messages", json={"body": f"from {index}"})
            assert response.status_code == 201, response.text
        bodies = [m["body"] for m in httpx.get(f"{nodes[0].url}/api/messages").json()["messages"]]
        assert bodies == ["from 0", "from 1"]
    finally:
        for node in nodes:
            node.stop()


async def _start_behind_a_held_lock(url: str, nodes: list[Node]) -> None:
    """Hold the migration lock while both nodes start: both must wait, and nothing may be
    created, until it is released; then they race for it."""
    holder = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", POSTGRES_LOCK_KEY)
        for node in nodes:
            node.launch()
        await asyncio.sleep(3)  # long enough for both to start and reach the lock
        for node in nodes:
            assert node.running, node.log_tail()
            assert not await _answers(node), "a node served before the schema was migrated"
        tables = await holder.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        await holder.execute("SELECT pg_advisory_unlock($1)", POSTGRES_LOCK_KEY)
    finally:
        await holder.close()


async def _answers(node: Node) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            await client.get(f"{node.url}/healthz")
    except httpx.TransportError:
        return False
    return True


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path
