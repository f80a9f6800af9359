"""A token's last use is written within seconds, in one transaction for many, not by the
request that used it (which made a storm of reconnecting programs a storm of writes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.db import create_engine, create_sessionmaker
from chat.settings import Settings
from tests.support.accounts import account_service
from tests.support.postgres import BOTH_ENGINES

pytestmark = [pytest.mark.anyio, BOTH_ENGINES]


async def test_uses_are_written_together_when_the_service_stops(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    accounts = account_service(sessionmaker)
    ada = await accounts.register(username="ada", password="a long enough password 1")
    bob = await accounts.register(username="bob", password="a long enough password 2")
    tokens = [await accounts.create_token(ada, "bot"), await accounts.create_token(bob, "bot")]
    accounts.start()
    for made in tokens:
        assert await accounts.check_token(made.token) is not None
    # The request that used a token wrote nothing; the node that saw it says so already.
    assert [t.last_used_at for t in await account_service(sessionmaker).tokens(ada)] == [None]
    assert [t.last_used_at is not None for t in await accounts.tokens(ada)] == [True]
    await accounts.stop()  # the last uses are written on the way out
    for person in (ada, bob):
        [record] = await account_service(sessionmaker).tokens(person)
        assert record.last_used_at is not None


async def test_a_failed_write_keeps_the_uses_for_the_next(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    accounts = account_service(sessionmaker)
    ada = await accounts.register(username="ada", password="a long enough password 1")
    made = await accounts.create_token(ada, "bot")
    assert await accounts.check_token(made.token) is not None
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"  # no tables: the write fails
    broken = create_engine(dataclasses.replace(settings, database_url=empty))
    accounts._token_use._sessionmaker = create_sessionmaker(broken)
    await accounts._token_use.write()
    await broken.dispose()
    [record] = await account_service(sessionmaker).tokens(ada)
    assert record.last_used_at is None
    accounts._token_use._sessionmaker = sessionmaker
    await accounts._token_use.write()
    [record] = await account_service(sessionmaker).tokens(ada)
    assert record.last_used_at is not None
