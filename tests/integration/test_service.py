"""ChatService on a real SQLite file: commit before publish, group commit, idempotency, failures."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import event

from chat.broadcast.base import Envelope
from chat.broadcast.memory import MemoryBackend
from chat.db import create_engine, create_sessionmaker
from chat.rendering import MessageRenderer, create_environment
from chat.resources import templates_dir
from chat.rooms.directory import RoomDirectory
from chat.schemas import Draft, HistoryQuery
from chat.services import ChatService, PostResult
from chat.settings import Settings
from chat.writer import StorageUnavailable, WriterClosed

# The room the migrations create; drafts name no room, so they go there.
GENERAL = 1


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.backend = MemoryBackend()
        self.published: list[dict[str, object]] = []
        self.commits = 0
        self.path = settings.database_url.removeprefix("sqlite+aiosqlite:///")
        self.service = ChatService(
            sessionmaker=create_sessionmaker(self.engine),
            backend=self.backend,
            renderer=MessageRenderer(create_environment(templates_dir())),
            directory=RoomDirectory(create_sessionmaker(self.engine)),
        )
        event.listen(self.engine.sync_engine, "commit", self._count_commit)

    def _count_commit(self, _connection: object) -> None:
        self.commits += 1

    def on_frames(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            self.on_frame(envelope.frame)

    def on_frame(self, frame: str) -> None:
        message = json.loads(frame)
        # Published means committed: another connection must already see the row.
        with sqlite3.connect(self.path) as reader:
            row = reader.execute("SELECT body FROM messages WHERE id = ?", (message["id"],))
            assert row.fetchone() == (message["body"],)
        self.published.append(message)

    def stored_count(self) -> int:
        with sqlite3.connect(self.path) as reader:
            return int(reader.execute("SELECT count(*) FROM messages").fetchone()[0])


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    harness = Harness(settings)
    await harness.backend.start(harness.on_frames)
    harness.service.start()
    yield harness
    await harness.service.stop()
    await harness.backend.stop()
    await harness.engine.dispose()


@pytest.mark.anyio
async def test_post_commits_then_publishes(harness: Harness) -> None:
    result = await harness.service.post(Draft(body="hello", author="ada"))
    assert result.created
    assert [m["id"] for m in harness.published] == [result.message.id]
    assert harness.published[0]["html"] == result.message.html


@pytest.mark.anyio
async def test_concurrent_posts_share_transactions(harness: Harness) -> None:
    count = 300
    results = await asyncio.gather(
        *(harness.service.post(Draft(body=f"m{n}", client_id=f"c{n}")) for n in range(count))
    )
    assert harness.stored_count() == count
    assert len({r.message.id for r in results}) == count
    # Published in id order, each exactly once.
    ids = [m["id"] for m in harness.published]
    assert ids == sorted(ids) and len(ids) == count
    # Group commit: far fewer transactions than messages.
    assert harness.commits < count / 4, harness.commits


@pytest.mark.anyio
async def test_one_senders_queued_messages_keep_their_order_and_share_transactions(
    harness: Harness,
) -> None:
    # What one socket does with a burst: queue each message without waiting for the commit.
    count = 200
    outcomes: list[PostResult | StorageUnavailable] = []
    done = asyncio.Event()

    def on_done(outcome: PostResult | StorageUnavailable) -> None:
        outcomes.append(outcome)
        if len(outcomes) == count:
            done.set()

    for n in range(count):
        await harness.service.post_in_order(Draft(body=f"q{n}"), on_done)
    await asyncio.wait_for(done.wait(), 10)
    assert all(isinstance(outcome, PostResult) and outcome.created for outcome in outcomes)
    assert [m["body"] for m in harness.published] == [f"q{n}" for n in range(count)]
    ids = [m["id"] for m in harness.published]
    assert ids == sorted(ids)
    assert harness.commits < count / 4, harness.commits


@pytest.mark.anyio
async def test_a_queued_message_that_cannot_be_stored_reports_it(settings: Settings) -> None:
    harness = Harness(settings.with_overrides(sqlite_busy_timeout_ms=100))
    await harness.backend.start(harness.on_frames)
    harness.service.start()
    outcome: asyncio.Future[PostResult | StorageUnavailable] = (
        asyncio.get_running_loop().create_future()
    )
    locker = sqlite3.connect(harness.path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        await harness.service.post_in_order(Draft(body="refused"), outcome.set_result)
        assert isinstance(await asyncio.wait_for(outcome, 10), StorageUnavailable)
        assert harness.published == []
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        await harness.service.stop()
        await harness.engine.dispose()
    assert harness.stored_count() == 0


@pytest.mark.anyio
async def test_same_client_id_in_one_batch_is_stored_once(harness: Harness) -> None:
    results = await asyncio.gather(
        *(harness.service.post(Draft(body="dup", client_id="same")) for _ in range(10))
    )
    assert harness.stored_count() == 1
    assert sum(r.created for r in results) == 1
    assert len({r.message.id for r in results}) == 1
    assert len(harness.published) == 1


@pytest.mark.anyio
async def test_resend_after_commit_returns_the_stored_message(harness: Harness) -> None:
    first = await harness.service.post(Draft(body="once", client_id="k"))
    second = await harness.service.post(Draft(body="once (retry)", client_id="k"))
    assert not second.created
    assert second.message == first.message
    assert len(harness.published) == 1


@pytest.mark.anyio
async def test_history_pages(harness: Harness) -> None:
    for n in range(5):
        await harness.service.post(Draft(body=f"h{n}"))
    page = await harness.service.history(GENERAL, "general", HistoryQuery(limit=2))
    assert [m.body for m in page.messages] == ["h3", "h4"]
    assert (page.older_cursor, page.newer_cursor) == (page.messages[0].id, page.messages[1].id)
    empty = await harness.service.history(
        GENERAL, "general", HistoryQuery(limit=2, after=page.newer_cursor)
    )
    assert empty.messages == [] and empty.newer_cursor == page.newer_cursor


@pytest.mark.anyio
async def test_history_reads_send_no_begin(harness: Harness) -> None:
    # A page is one statement, its own read transaction: a BEGIN would only cost round trips.
    for n in range(3):
        await harness.service.post(Draft(body=f"r{n}"))
    statements: list[str] = []
    engine = harness.engine.sync_engine

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        page = await harness.service.history(GENERAL, "general", HistoryQuery(limit=2))
        older = await harness.service.history(
            GENERAL, "general", HistoryQuery(limit=2, before=page.messages[0].id)
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [m.body for m in older.messages] == ["r0"]
    assert older.has_newer and not older.has_older
    assert len(statements) == 2 and not any("BEGIN" in s.upper() for s in statements), statements


@pytest.mark.anyio
async def test_a_lock_refused_at_once_is_retried(settings: Settings) -> None:
    # busy_timeout 0 makes SQLite refuse at once, as it sometimes does on its own (another
    # process opening the WAL index): such a refusal is retried, not reported.
    harness = Harness(settings.with_overrides(sqlite_busy_timeout_ms=0))
    await harness.backend.start(harness.on_frames)
    harness.service.start()
    locker = sqlite3.connect(harness.path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        posting = asyncio.create_task(harness.service.post(Draft(body="after a retry")))
        await asyncio.sleep(0.015)
        locker.execute("ROLLBACK")
        result = await asyncio.wait_for(posting, 5)
        assert result.created
        assert [m["body"] for m in harness.published] == ["after a retry"]
    finally:
        locker.close()
        await harness.service.stop()
        await harness.engine.dispose()


@pytest.mark.anyio
async def test_a_locked_database_fails_the_post_keeps_reads_and_recovers(
    settings: Settings,
) -> None:
    harness = Harness(settings.with_overrides(sqlite_busy_timeout_ms=200))
    await harness.backend.start(harness.on_frames)
    harness.service.start()
    try:
        kept = await harness.service.post(Draft(body="before"))
        locker = sqlite3.connect(harness.path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            with pytest.raises(StorageUnavailable):
                await harness.service.post(Draft(body="not stored", client_id="retry-me"))
            page = await harness.service.history(
                GENERAL, "general", HistoryQuery(limit=10)
            )  # reads still work
            assert [m.body for m in page.messages] == ["before"]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        retried = await harness.service.post(Draft(body="not stored", client_id="retry-me"))
        assert retried.created
        page = await harness.service.history(GENERAL, "general", HistoryQuery(limit=10))
        assert [m.body for m in page.messages] == ["before", "not stored"]
        assert [m["id"] for m in harness.published] == [kept.message.id, retried.message.id]
    finally:
        await harness.service.stop()
        await harness.engine.dispose()


@pytest.mark.anyio
async def test_stop_rejects_new_posts(harness: Harness) -> None:
    await harness.service.stop()
    with pytest.raises(WriterClosed):
        await harness.service.post(Draft(body="late"))


@pytest.mark.anyio
async def test_a_catch_up_renders_once_and_never_an_older_version(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted = await harness.service.post(Draft(body="first words", author="ada"))
    message_id = posted.message.id
    harness.service.forget(message_id)  # as after a restart: nothing remembered
    renderer = harness.service._renderer
    render = renderer.render
    renders = []

    def counting(**fields: object) -> str:
        renders.append(fields["message_id"])
        return render(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(renderer, "render", counting)

    async def catch_up() -> list[str]:
        envelopes = await harness.service.catch_up(
            after=0, through=10**9, room_ids={GENERAL}, user_id=None, limit=100
        )
        return [envelope.frame for envelope in envelopes]

    first = await catch_up()
    assert await catch_up() == first, "the same frames, byte for byte"
    assert renders == [message_id], "rendered by the first catch-up only"
    with sqlite3.connect(harness.path) as database:  # a change another node made
        database.execute(
            "UPDATE messages SET body = 'second words', version = version + 1 WHERE id = ?",
            (message_id,),
        )
    [frame] = await catch_up()
    assert json.loads(frame)["body"] == "second words"
    remembered = harness.service._presented[message_id]
    assert "first words" not in remembered.text and "first words" not in remembered.message.html
