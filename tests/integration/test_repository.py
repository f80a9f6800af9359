"""Keyset paging over thousands of real rows: no gaps, no duplicates, both directions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.db import create_engine, create_sessionmaker
from chat.repository import MessageRepository, NewMessage
from chat.settings import Settings
from tests.support.postgres import BOTH_ENGINES

pytestmark = BOTH_ENGINES

ROWS = 2_345

# The room the migrations create (general); every message here lives in it.
GENERAL = 1


@pytest.fixture
async def sessionmaker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    factory = create_sessionmaker(engine)
    async with factory.begin() as session:
        now = datetime.now(UTC)
        await MessageRepository(session).add_new(
            NewMessage(
                body=f"message {n}", author=None, client_id=f"k{n}", created_at=now, room_id=GENERAL
            )
            for n in range(ROWS)
        )
    yield factory
    await engine.dispose()


@pytest.mark.anyio
async def test_paging_backwards_visits_every_row_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[int] = []
    async with sessionmaker() as session:
        repository = MessageRepository(session)
        page = await repository.newest(GENERAL, 100)
        assert not page.has_newer
        while True:
            ids = [row.id for row in page.messages]
            assert ids == sorted(ids)
            seen = ids + seen
            if not page.has_older:
                break
            page = await repository.before(GENERAL, ids[0], 100)
            assert page.has_newer
    assert seen == list(range(1, ROWS + 1))


@pytest.mark.anyio
async def test_paging_forwards_visits_every_row_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[int] = []
    cursor = 0
    async with sessionmaker() as session:
        repository = MessageRepository(session)
        while True:
            page = await repository.after(GENERAL, cursor, 77)
            ids = [row.id for row in page.messages]
            assert ids == sorted(ids)
            assert page.has_older == (cursor > 0)
            seen.extend(ids)
            if not page.has_newer:
                break
            cursor = ids[-1]
    assert seen == list(range(1, ROWS + 1))


@pytest.mark.anyio
async def test_edges(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        repository = MessageRepository(session)
        past_end = await repository.after(GENERAL, ROWS, 10)
        assert past_end.messages == []
        assert past_end.has_older and not past_end.has_newer
        before_start = await repository.before(GENERAL, 1, 10)
        assert before_start.messages == []
        assert not before_start.has_older and before_start.has_newer
        first = await repository.before(GENERAL, 3, 10)
        assert [row.id for row in first.messages] == [1, 2]
        assert not first.has_older and first.has_newer
        beyond = await repository.before(GENERAL, 10**12, 5)
        assert [row.id for row in beyond.messages] == list(range(ROWS - 4, ROWS + 1))


@pytest.mark.anyio
async def test_lookup_by_client_ids(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        found = await MessageRepository(session).by_client_ids(["k0", "k5", "missing", "k5"])
    assert {key: row.body for key, row in found.items()} == {"k0": "message 0", "k5": "message 5"}


@pytest.mark.anyio
async def test_add_new_skips_stored_client_ids_and_keeps_the_order(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    drafts = [
        NewMessage(
            body="fresh a", author=None, client_id="fresh-a", created_at=now, room_id=GENERAL
        ),
        NewMessage(body="again", author=None, client_id="k7", created_at=now, room_id=GENERAL),
        NewMessage(body="no key", author=None, client_id=None, created_at=now, room_id=GENERAL),
        NewMessage(
            body="fresh b", author=None, client_id="fresh-b", created_at=now, room_id=GENERAL
        ),
    ]
    async with sessionmaker.begin() as session:
        stored = await MessageRepository(session).add_new(drafts)
    assert [(record.body, created) for record, created in stored] == [
        ("fresh a", True),
        ("message 7", False),  # the row stored earlier under k7
        ("no key", True),
        ("fresh b", True),
    ]
    # Each returned id is the row that holds that body (a skipped row may leave a gap).
    created = [(record.id, record.body) for record, is_new in stored if is_new]
    async with sessionmaker() as session:
        page = await MessageRepository(session).after(GENERAL, ROWS, 10)
    assert [(row.id, row.body) for row in page.messages] == created
    assert [body for _, body in created] == ["fresh a", "no key", "fresh b"]


@pytest.mark.anyio
async def test_around_walks_out_both_ways_without_gaps(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        repository = MessageRepository(session)
        centre = ROWS // 2
        page = await repository.around(GENERAL, centre, 9)
        assert page is not None
        assert [row.id for row in page.messages] == list(range(centre - 4, centre + 5))
        assert page.has_older and page.has_newer
        seen = [row.id for row in page.messages]
        older = page
        while older.has_older:
            older = await repository.before(GENERAL, older.messages[0].id, 100)
            seen = [row.id for row in older.messages] + seen
        newer = page
        while newer.has_newer:
            newer = await repository.after(GENERAL, newer.messages[-1].id, 100)
            seen += [row.id for row in newer.messages]
        assert seen == list(range(1, ROWS + 1))
        first = await repository.around(GENERAL, 1, 4)
        assert first is not None and [row.id for row in first.messages] == [1, 2, 3]
        assert not first.has_older and first.has_newer
        assert await repository.around(GENERAL, ROWS + 1, 4) is None
        assert await repository.around(GENERAL + 1, centre, 4) is None  # not in that room
