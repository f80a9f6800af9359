"""Storage on PostgreSQL: migrations, group commit, and client_id races between writers."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import event

from chat.broadcast.base import Envelope
from chat.broadcast.memory import MemoryBackend
from chat.broadcast.postgres import asyncpg_dsn
from chat.db import create_engine, create_sessionmaker
from chat.models import Base
from chat.rendering import MessageRenderer, create_environment
from chat.resources import templates_dir
from chat.rooms.directory import RoomDirectory
from chat.schemas import Draft
from chat.services import ChatService
from chat.settings import Settings
from tests.integration.test_migrations import schema_differences
from tests.scaleout.conftest import NodeFactory
from tests.support.database import REPO_ROOT, downgrade, upgrade
from tests.support.postgres import PostgresDatabase, execute, run_async

pytestmark = pytest.mark.postgres


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows: list[asyncpg.Record] = await connection.fetch(query)
        return rows
    finally:
        await connection.close()


def tables(url: str) -> set[str]:
    rows = run_async(
        lambda: fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    return {row["tablename"] for row in rows}


def test_alembic_cli_migrates_postgres_both_ways(postgres_database: PostgresDatabase) -> None:
    url = postgres_database.extra()
    # The operator's command: the URL comes from CHAT_DATABASE_URL through the app's settings.
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "CHAT_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert tables(url) == {
        "alembic_version",
        *(table.name for table in Base.metadata.tables.values()),
    }
    assert schema_differences(url) == []
    downgrade(url, "base")
    assert tables(url) == {"alembic_version"}
    upgrade(url)
    assert schema_differences(url) == []


def test_autogenerate_would_notice_a_difference_on_postgres(
    postgres_database: PostgresDatabase,
) -> None:
    url = postgres_database.extra()
    upgrade(url)
    run_async(lambda: execute(url, "ALTER TABLE messages DROP CONSTRAINT uq_messages_client_id"))
    assert schema_differences(url) != []


class Writer:
    """A ChatService on its own engine: as far as the database can tell, its own process."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(Settings(database_url=url))
        self.backend = MemoryBackend()
        self.published: list[int] = []
        self.commits = 0
        self.service = ChatService(
            sessionmaker=create_sessionmaker(self.engine),
            backend=self.backend,
            renderer=MessageRenderer(create_environment(templates_dir())),
            directory=RoomDirectory(create_sessionmaker(self.engine)),
        )
        event.listen(self.engine.sync_engine, "commit", self._count_commit)

    def _count_commit(self, _connection: object) -> None:
        self.commits += 1

    def _on_frames(self, envelopes: Sequence[Envelope]) -> None:
        self.published.extend(json.loads(envelope.frame)["id"] for envelope in envelopes)

    async def start(self) -> None:
        await self.backend.start(self._on_frames)
        self.service.start()

    async def stop(self) -> None:
        await self.service.stop()
        await self.backend.stop()
        await self.engine.dispose()


@pytest.fixture
async def writer(pg_url: str) -> AsyncIterator[Writer]:
    writer = Writer(pg_url)
    await writer.start()
    yield writer
    await writer.stop()


@pytest.mark.anyio
async def test_group_commit_on_postgres(writer: Writer) -> None:
    count = 300
    results = await asyncio.gather(
        *(writer.service.post(Draft(body=f"m{n}", client_id=f"c{n}")) for n in range(count))
    )
    ids = [result.message.id for result in results]
    assert sorted(ids) == list(range(1, count + 1))
    assert writer.published == sorted(writer.published) and len(writer.published) == count
    assert writer.commits < count / 4, writer.commits


@pytest.mark.anyio
async def test_client_id_stored_by_another_writer_meanwhile_is_retried(
    writer: Writer, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Another process inserts client_id "raced" and has not committed yet: our writer's look-up
    # misses it, its insert waits on the unique index, fails once the other commits, and the
    # retry finds the other's row. The sender gets that message, not an error.
    caplog.set_level(logging.INFO, logger="chat.writer")
    other = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        transaction = other.transaction()
        await transaction.start()
        their_id = await other.fetchval(
            "INSERT INTO messages (body, client_id, created_at, room_id) "
            "VALUES ('theirs', 'raced', now(), 1) RETURNING id"
        )
        ours = asyncio.create_task(writer.service.post(Draft(body="ours", client_id="raced")))
        await asyncio.sleep(0.5)  # our insert is now waiting on their lock
        assert not ours.done()
        await transaction.commit()
        result = await asyncio.wait_for(ours, 10)
    finally:
        await other.close()
    assert not result.created
    assert result.message.id == their_id and result.message.body == "theirs"
    assert "client_id conflict with a concurrent writer" in caplog.text
    assert writer.published == []  # nothing new was stored here, so nothing is broadcast


@pytest.mark.anyio
async def test_two_processes_posting_the_same_client_ids_store_each_once(
    make_node: NodeFactory,
) -> None:
    nodes = [make_node(name, broadcast_url="memory://") for name in ("a", "b")]
    client_ids = [f"shared-{n}" for n in range(60)]

    async def post_all(url: str) -> dict[str, tuple[int, int]]:
        async with httpx.AsyncClient(base_url=url, timeout=15) as http:
            semaphore = asyncio.Semaphore(20)

            async def post(client_id: str) -> tuple[str, tuple[int, int]]:
                async with semaphore:
                    response = await http.post(
                        "/api/messages", json={"body": client_id, "client_id": client_id}
                    )
                return client_id, (response.status_code, response.json().get("id", -1))

            return dict(await asyncio.gather(*(post(client_id) for client_id in client_ids)))

    answers = await asyncio.gather(*(post_all(node.url) for node in nodes))
    stored = {m["client_id"]: m["id"] for m in await asyncio.to_thread(nodes[0].all_messages)}
    assert sorted(stored) == sorted(client_ids)
    for client_id in client_ids:
        statuses = sorted(answer[client_id][0] for answer in answers)
        assert statuses == [200, 201], (client_id, statuses)
        assert {answer[client_id][1] for answer in answers} == {stored[client_id]}
