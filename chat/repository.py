"""MessageRepository: the only code that queries the messages table.

It receives its session and never commits: the caller owns the transaction.
Pages are keyset queries on the primary key, never OFFSET.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.models import Message


@dataclass(frozen=True, slots=True)
class NewMessage:
    body: str
    author: str | None
    client_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    messages: Sequence[Message]  # oldest first
    has_older: bool
    has_newer: bool


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_all(self, new_messages: Iterable[NewMessage]) -> list[Message]:
        """Insert rows and give them their ids; the caller commits or rolls back."""
        rows = [
            Message(
                body=new.body, author=new.author, client_id=new.client_id, created_at=new.created_at
            )
            for new in new_messages
        ]
        if not rows:
            return rows
        if self._session.get_bind().dialect.name == "sqlite":
            await self._insert_sqlite(rows)
        else:
            self._session.add_all(rows)
            await self._session.flush()
        return rows

    async def _insert_sqlite(self, rows: list[Message]) -> None:
        """One executemany, then the new ids in one query.

        SQLite cannot promise the order of RETURNING rows, so SQLAlchemy would insert row by
        row to learn each id. Instead: within this transaction no other writer can commit
        (WAL snapshot; the writer holds the lock), and AUTOINCREMENT ids only grow, so the
        rows above the previous maximum are exactly ours, in insertion order.
        """
        previous = await self._session.scalar(select(func.coalesce(func.max(Message.id), 0)))
        await self._session.execute(
            insert(Message),
            [
                {
                    "body": row.body,
                    "author": row.author,
                    "client_id": row.client_id,
                    "created_at": row.created_at,
                }
                for row in rows
            ],
        )
        ids = list(
            await self._session.scalars(
                select(Message.id).where(Message.id > previous).order_by(Message.id)
            )
        )
        if len(ids) != len(rows):
            raise RuntimeError(f"inserted {len(rows)} rows but found {len(ids)} new ids")
        for row, new_id in zip(rows, ids, strict=True):
            row.id = new_id

    async def by_client_ids(self, client_ids: Iterable[str]) -> dict[str, Message]:
        wanted = list(set(client_ids))
        if not wanted:
            return {}
        result = await self._session.scalars(select(Message).where(Message.client_id.in_(wanted)))
        return {row.client_id: row for row in result if row.client_id is not None}

    async def newest(self, limit: int) -> Page:
        rows = await self._fetch_descending(None, limit + 1)
        has_older = len(rows) > limit
        return Page(messages=rows[:limit][::-1], has_older=has_older, has_newer=False)

    async def before(self, cursor: int, limit: int) -> Page:
        rows = await self._fetch_descending(cursor, limit + 1)
        has_older = len(rows) > limit
        page = rows[:limit][::-1]
        # An empty page means nothing older than the cursor; newer rows exist iff the cursor
        # itself or something after it does.
        newer = Message.id > page[-1].id if page else Message.id >= cursor
        return Page(messages=page, has_older=has_older, has_newer=await self._exists(newer))

    async def after(self, cursor: int, limit: int) -> Page:
        statement = select(Message).where(Message.id > cursor).order_by(Message.id).limit(limit + 1)
        rows = list(await self._session.scalars(statement))
        has_newer = len(rows) > limit
        page = rows[:limit]
        # Compare with the cursor itself, never cursor + 1: the largest cursor is the largest
        # integer the column holds.
        older = Message.id < page[0].id if page else Message.id <= cursor
        return Page(messages=page, has_older=await self._exists(older), has_newer=has_newer)

    async def _fetch_descending(self, before: int | None, limit: int) -> list[Message]:
        statement = select(Message).order_by(Message.id.desc()).limit(limit)
        if before is not None:
            statement = statement.where(Message.id < before)
        return list(await self._session.scalars(statement))

    async def _exists(self, condition: ColumnElement[bool]) -> bool:
        return bool(await self._session.scalar(select(exists().where(condition))))
