"""When each API token was last used, written in batches.

`last_used_at` is for people reviewing their tokens (10-minute grain). Writing it in the request
that used the token made every socket connect with a stale token a write transaction: 2,000
programs reconnecting at once queued 2,000 of them behind the one SQLite writer lock, starving
the message writer of pool connections, and past `busy_timeout` failed the handshakes with
"database is locked". Here uses are noted in memory and written every `every` seconds in one
transaction, the last ones when the server stops. Bounded: past `MAX_PENDING` distinct tokens
between writes, further uses wait for a later one to be noted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth.repository import AccountRepository, TokenRecord
from chat.background import Background
from chat.db import WRITE_EXECUTION_OPTIONS

logger = logging.getLogger(__name__)

WRITE_EVERY_SECONDS = 5.0
MAX_PENDING = 10_000


class TokenUse:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, every: float = WRITE_EVERY_SECONDS
    ) -> None:
        self._sessionmaker = sessionmaker
        self._every = every
        self._pending: dict[int, datetime] = {}
        self._background = Background("token-use")

    def used(self, token_id: int, at: datetime) -> None:
        if token_id in self._pending or len(self._pending) < MAX_PENDING:
            self._pending[token_id] = at

    def latest(self, record: TokenRecord) -> TokenRecord:
        """`record` with a use noted here and not written yet."""
        at = self._pending.get(record.id)
        return record if at is None else dataclasses.replace(record, last_used_at=at)

    async def write(self) -> None:
        """Write the uses noted so far; kept for the next write if the database refuses."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with self._sessionmaker() as session, session.begin():
                await session.connection(execution_options=WRITE_EXECUTION_OPTIONS)
                await AccountRepository(session).touch_tokens(pending)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("could not record when %d token(s) were used: %s", len(pending), error)
            for token_id, at in pending.items():
                self.used(token_id, self._pending.get(token_id, at))

    def start(self) -> None:
        self._background.start(self._write_forever())

    async def stop(self) -> None:
        await self._background.stop()
        await self.write()

    async def _write_forever(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            await self.write()
