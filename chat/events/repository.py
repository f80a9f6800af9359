"""EventRepository: appends to the change log and reads it back by cursor.

It receives its session and never commits: the caller owns the transaction, so a change and its
event are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.events.records import ABOUT_THE_USER, ROOM_KINDS, EventRecord, NewEvent
from chat.models import Event

_events = cast(Table, Event.__table__)
_COLUMNS = (
    _events.c.id,
    _events.c.kind,
    _events.c.created_at,
    _events.c.room_id,
    _events.c.user_id,
    _events.c.message_id,
    _events.c.data,
)


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, events: Sequence[NewEvent]) -> list[EventRecord]:
        """Insert events in order; their records with the sequence numbers they were given."""
        if not events:
            return []
        values = [
            {
                "kind": event.kind,
                "created_at": event.created_at,
                "room_id": event.room_id,
                "user_id": event.user_id,
                "message_id": event.message_id,
                "data": event.data,
            }
            for event in events
        ]
        if self._session.get_bind().dialect.name == "sqlite":
            # One multi-row INSERT. SQLite returns RETURNING rows in no promised order, but the
            # writing transaction holds the lock and AUTOINCREMENT only grows: sorted ids line
            # up with the VALUES in order (as in chat.repository).
            statement = insert(_events).values(values).returning(_events.c.id)
            ids = sorted((await self._session.execute(statement)).scalars())
        else:
            statement = insert(_events).returning(_events.c.id, sort_by_parameter_order=True)
            ids = list((await self._session.execute(statement, values)).scalars())
        return [_record_of(seq, event) for seq, event in zip(ids, events, strict=True)]

    async def after(
        self,
        cursor: int,
        *,
        room_ids: Collection[int],
        user_id: int | None,
        limit: int,
        below: int | None = None,
    ) -> list[EventRecord]:
        """Up to `limit` events above `cursor` (and below `below`) in these rooms or for this
        user, in log order."""
        visible = _visible_to(room_ids, user_id)
        if visible is None:
            return []
        statement = select(*_COLUMNS).where(_events.c.id > cursor, visible)
        if below is not None:
            statement = statement.where(_events.c.id < below)
        statement = statement.order_by(_events.c.id).limit(limit)
        return [_record(row) for row in await self._session.execute(statement)]

    async def everything_after(self, cursor: int, limit: int) -> list[EventRecord]:
        """Every event above `cursor`, whoever it is for: what a relay replays."""
        statement = (
            select(*_COLUMNS).where(_events.c.id > cursor).order_by(_events.c.id).limit(limit)
        )
        return [_record(row) for row in await self._session.execute(statement)]

    async def latest_seq(self) -> int:
        return int(await self._session.scalar(select(func.max(_events.c.id))) or 0)

    async def oldest_seq(self) -> int:
        return int(await self._session.scalar(select(func.min(_events.c.id))) or 0)


def _visible_to(room_ids: Collection[int], user_id: int | None) -> ColumnElement[bool] | None:
    """Room changes in the rooms given, and the user's own news wherever it happened."""
    conditions: list[ColumnElement[bool]] = []
    if room_ids:
        conditions.append(
            _events.c.room_id.in_(sorted(room_ids)) & _events.c.kind.in_(sorted(ROOM_KINDS))
        )
    if user_id is not None:
        conditions.append(
            (_events.c.user_id == user_id) & _events.c.kind.in_(sorted(ABOUT_THE_USER))
        )
    if not conditions:
        return None
    return or_(*conditions)


def _record_of(seq: int, event: NewEvent) -> EventRecord:
    return EventRecord(
        seq=seq,
        kind=event.kind,
        created_at=event.created_at,
        room_id=event.room_id,
        user_id=event.user_id,
        message_id=event.message_id,
        data=event.data,
    )


def _record(row: Any) -> EventRecord:
    return EventRecord(
        seq=int(row.id),
        kind=row.kind,
        created_at=row.created_at,
        room_id=row.room_id,
        user_id=row.user_id,
        message_id=row.message_id,
        data=row.data,
    )
