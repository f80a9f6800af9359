"""MessageRepository: the only code that queries the messages table.

It receives its session and never commits: the caller owns the transaction.
Pages are keyset queries on the primary key, never OFFSET. Queries are Core statements that
return plain records: a page is read on every history request and every message is written
once, and ORM identity tracking would buy nothing for rows that never change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.models import Message

_messages = Message.__table__
_COLUMNS = (
    _messages.c.id,
    _messages.c.body,
    _messages.c.author,
    _messages.c.client_id,
    _messages.c.created_at,
)


@dataclass(frozen=True, slots=True)
class NewMessage:
    body: str
    author: str | None
    client_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A stored message, as read from (or just written to) the table."""

    id: int
    body: str
    author: str | None
    client_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    messages: Sequence[MessageRecord]  # oldest first
    has_older: bool
    has_newer: bool


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_all(self, new_messages: Iterable[NewMessage]) -> list[MessageRecord]:
        """Insert rows and give them their ids, in order; the caller commits or rolls back."""
        drafts = list(new_messages)
        if not drafts:
            return []
        values = [
            {
                "body": new.body,
                "author": new.author,
                "client_id": new.client_id,
                "created_at": new.created_at,
            }
            for new in drafts
        ]
        if self._session.get_bind().dialect.name == "sqlite":
            # SQLite returns RETURNING rows in no promised order, and SQLAlchemy would then
            # insert row by row to learn each id. But the writer holds the write lock for the
            # whole transaction and AUTOINCREMENT ids only grow, so one multi-row INSERT gives
            # the rows increasing ids in the order of its VALUES: sorted, they line up.
            result = await self._session.execute(
                insert(_messages).returning(_messages.c.id), values
            )
            ids = sorted(result.scalars())
        else:
            result = await self._session.execute(
                insert(_messages).returning(_messages.c.id, sort_by_parameter_order=True), values
            )
            ids = list(result.scalars())
        if len(ids) != len(drafts):
            raise RuntimeError(f"inserted {len(drafts)} rows but found {len(ids)} new ids")
        return [
            MessageRecord(
                id=new_id,
                body=new.body,
                author=new.author,
                client_id=new.client_id,
                created_at=new.created_at,
            )
            for new_id, new in zip(ids, drafts, strict=True)
        ]

    async def by_client_ids(self, client_ids: Iterable[str]) -> dict[str, MessageRecord]:
        wanted = list(set(client_ids))
        if not wanted:
            return {}
        result = await self._session.execute(
            select(*_COLUMNS).where(_messages.c.client_id.in_(wanted))
        )
        records = (_record(row) for row in result)
        return {record.client_id: record for record in records if record.client_id is not None}

    async def newest(self, limit: int) -> Page:
        statement = select(*_COLUMNS).order_by(_messages.c.id.desc()).limit(limit + 1)
        rows = [_record(row) for row in await self._session.execute(statement)]
        return Page(messages=rows[:limit][::-1], has_older=len(rows) > limit, has_newer=False)

    async def before(self, cursor: int, limit: int) -> Page:
        # The newest row below the cursor is the page's last, so "anything newer than the
        # page" is "anything at or above the cursor": one statement answers both questions.
        key = _messages.c.id
        newer = key >= cursor
        statement = _with_flag(select(*_COLUMNS), newer).where(key < cursor).order_by(key.desc())
        rows = (await self._session.execute(statement.limit(limit + 1))).all()
        page = [_record(row) for row in rows[:limit]][::-1]
        has_newer = bool(rows[0].flag) if rows else await self._exists(newer)
        return Page(messages=page, has_older=len(rows) > limit, has_newer=has_newer)

    async def after(self, cursor: int, limit: int) -> Page:
        # Compare with the cursor itself, never cursor + 1: the largest cursor is the largest
        # integer the column holds.
        key = _messages.c.id
        older = key <= cursor
        statement = _with_flag(select(*_COLUMNS), older).where(key > cursor).order_by(key)
        rows = (await self._session.execute(statement.limit(limit + 1))).all()
        page = [_record(row) for row in rows[:limit]]
        has_older = bool(rows[0].flag) if rows else await self._exists(older)
        return Page(messages=page, has_older=has_older, has_newer=len(rows) > limit)

    async def _exists(self, condition: ColumnElement[bool]) -> bool:
        return bool(await self._session.scalar(select(exists().where(condition))))


def _with_flag(statement: Select[Any], condition: ColumnElement[bool]) -> Select[Any]:
    """Add a column saying whether any row meets `condition` (evaluated once per query)."""
    return statement.add_columns(exists().where(condition).label("flag"))


def _record(row: Row[Any]) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        body=row.body,
        author=row.author,
        client_id=row.client_id,
        created_at=row.created_at,
    )
