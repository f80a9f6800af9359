from __future__ import annotations

import pytest
from sqlalchemy import text

from chat.db import create_engine
from chat.settings import Settings


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "code"), [("FULL", 2), ("NORMAL", 1)])
async def test_every_sqlite_connection_gets_wal_busy_timeout_and_durability(
    settings: Settings, mode: str, code: int
) -> None:
    engine = create_engine(
        settings.with_overrides(sqlite_synchronous=mode, sqlite_busy_timeout_ms=1234)
    )
    try:
        for _ in range(3):  # fresh connections, not just the first one
            async with engine.connect() as connection:
                assert (await connection.scalar(text("PRAGMA journal_mode"))) == "wal"
                assert (await connection.scalar(text("PRAGMA busy_timeout"))) == 1234
                assert (await connection.scalar(text("PRAGMA synchronous"))) == code
            await engine.dispose()
    finally:
        await engine.dispose()
