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
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Select, Table, exists, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from chat.auth.principal import Account
from chat.models import Message, User

_messages = cast(Table, Message.__table__)
_users = cast(Table, User.__table__)
# Messages with their author's account (if any): every read joins users by primary key.
_WITH_AUTHOR = _messages.outerjoin(_users, _users.c.id == _messages.c.user_id)
_COLUMNS = (
    _messages.c.id,
    _messages.c.body,
    _messages.c.author,
    _messages.c.client_id,
    _messages.c.created_at,
    _messages.c.user_id,
    _users.c.username,
    _users.c.display_name,
    _users.c.role,
)


@dataclass(frozen=True, slots=True)
class NewMessage:
    body: str
    author: str | None
    client_id: str | None
    created_at: datetime
    user: Account | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A stored message, as read from (or just written to) the table."""

    id: int
    body: str
    author: str | None
    client_id: str | None
    created_at: datetime
    user: Account | None = None  # the signed-in author; None for a guest


@dataclass(frozen=True, slots=True)
class Page:
    messages: Sequence[MessageRecord]  # oldest first
    has_older: bool
    has_newer: bool


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_new(self, new_messages: Iterable[NewMessage]) -> list[tuple[MessageRecord, bool]]:
        """Insert each message unless its client_id is already stored; the caller commits.

        Returns, per message in order, the stored record and whether this call created it
        (False: the record stored earlier under the same client_id). client_ids must be unique
        within one call.
        """
        drafts = list(new_messages)
        if not drafts:
            return []
        if self._session.get_bind().dialect.name == "sqlite":
            return await self._add_new_sqlite(drafts)
        existing = await self.by_client_ids(new.client_id for new in drafts if new.client_id)
        fresh = [new for new in drafts if new.client_id not in existing]
        return _line_up(drafts, existing, await self._insert_in_order(fresh) if fresh else [])

    async def _insert_in_order(self, drafts: list[NewMessage]) -> list[int]:
        statement = insert(_messages).returning(_messages.c.id, sort_by_parameter_order=True)
        return list((await self._session.execute(statement, _values(drafts))).scalars())

    async def _add_new_sqlite(self, drafts: list[NewMessage]) -> list[tuple[MessageRecord, bool]]:
        """One multi-row INSERT that skips client_ids already stored, in one round trip.

        SQLite returns RETURNING rows in no promised order (SQLAlchemy would then insert row by
        row to learn each id). But the writer holds the write lock for the whole transaction and
        AUTOINCREMENT ids only grow, so the inserted rows got increasing ids in the order of the
        VALUES: walking the drafts in order and the returned ids sorted lines them up. A draft
        whose client_id came back missing was skipped; the stored row is then looked up.
        """
        statement = (
            sqlite_insert(_messages)
            .on_conflict_do_nothing(index_elements=[_messages.c.client_id])
            .returning(_messages.c.id, _messages.c.client_id)
        )
        returned = (await self._session.execute(statement, _values(drafts))).all()
        created_ids = {row.client_id for row in returned if row.client_id is not None}
        skipped = [
            new.client_id for new in drafts if new.client_id and new.client_id not in created_ids
        ]
        existing = await self.by_client_ids(skipped) if skipped else {}
        if len(existing) != len(skipped) or len(returned) + len(skipped) != len(drafts):
            raise RuntimeError(f"{len(drafts)} drafts: {len(returned)} inserted, {skipped=}")
        return _line_up(drafts, existing, sorted(row.id for row in returned))

    async def by_client_ids(self, client_ids: Iterable[str]) -> dict[str, MessageRecord]:
        wanted = list(set(client_ids))
        if not wanted:
            return {}
        result = await self._session.execute(
            select(*_COLUMNS).select_from(_WITH_AUTHOR).where(_messages.c.client_id.in_(wanted))
        )
        records = (_record(row) for row in result)
        return {record.client_id: record for record in records if record.client_id is not None}

    async def newest(self, limit: int) -> Page:
        statement = (
            select(*_COLUMNS)
            .select_from(_WITH_AUTHOR)
            .order_by(_messages.c.id.desc())
            .limit(limit + 1)
        )
        rows = [_record(row) for row in await self._session.execute(statement)]
        return Page(messages=rows[:limit][::-1], has_older=len(rows) > limit, has_newer=False)

    async def before(self, cursor: int, limit: int) -> Page:
        # The newest row below the cursor is the page's last, so "anything newer than the
        # page" is "anything at or above the cursor": one statement answers both questions.
        key = _messages.c.id
        newer = key >= cursor
        statement = (
            _with_flag(select(*_COLUMNS).select_from(_WITH_AUTHOR), newer)
            .where(key < cursor)
            .order_by(key.desc())
        )
        rows = (await self._session.execute(statement.limit(limit + 1))).all()
        page = [_record(row) for row in rows[:limit]][::-1]
        has_newer = bool(rows[0].flag) if rows else await self._exists(newer)
        return Page(messages=page, has_older=len(rows) > limit, has_newer=has_newer)

    async def after(self, cursor: int, limit: int) -> Page:
        # Compare with the cursor itself, never cursor + 1: the largest cursor is the largest
        # integer the column holds.
        key = _messages.c.id
        older = key <= cursor
        statement = (
            _with_flag(select(*_COLUMNS).select_from(_WITH_AUTHOR), older)
            .where(key > cursor)
            .order_by(key)
        )
        rows = (await self._session.execute(statement.limit(limit + 1))).all()
        page = [_record(row) for row in rows[:limit]]
        has_older = bool(rows[0].flag) if rows else await self._exists(older)
        return Page(messages=page, has_older=has_older, has_newer=len(rows) > limit)

    async def _exists(self, condition: ColumnElement[bool]) -> bool:
        return bool(await self._session.scalar(select(exists().where(condition))))


def _values(drafts: Sequence[NewMessage]) -> list[dict[str, Any]]:
    return [
        {
            "body": new.body,
            "author": new.author,
            "client_id": new.client_id,
            "created_at": new.created_at,
            "user_id": new.user.id if new.user is not None else None,
        }
        for new in drafts
    ]


def _line_up(
    drafts: Sequence[NewMessage], existing: dict[str, MessageRecord], new_ids: Sequence[int]
) -> list[tuple[MessageRecord, bool]]:
    """Per draft in order: the earlier record under its client_id, or the next new id's row."""
    ids = iter(new_ids)
    return [
        (existing[new.client_id], False)
        if new.client_id in existing
        else (_new_record(next(ids), new), True)
        for new in drafts
    ]


def _new_record(new_id: int, new: NewMessage) -> MessageRecord:
    return MessageRecord(
        id=new_id,
        body=new.body,
        author=new.author,
        client_id=new.client_id,
        created_at=new.created_at,
        user=new.user,
    )


def _with_flag(statement: Select[Any], condition: ColumnElement[bool]) -> Select[Any]:
    """Add a column saying whether any row meets `condition` (evaluated once per query)."""
    return statement.add_columns(exists().where(condition).label("flag"))


def _record(row: Row[*tuple[Any, ...]]) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        body=row.body,
        author=row.author,
        client_id=row.client_id,
        created_at=row.created_at,
        user=(
            Account(
                id=row.user_id,
                username=row.username,
                display_name=row.display_name,
                role=row.role,
            )
            if row.user_id is not None
            else None
        ),
    )
