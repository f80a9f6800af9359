"""MessageRepository: the only code that queries the messages table.

It receives its session and never commits: the caller owns the transaction.
Pages are keyset queries on the primary key, never OFFSET. Queries are Core statements that
return plain records: a page is read on every history request and every message is written
once, and ORM identity tracking would buy nothing. A message changes only through the methods
under "changes to stored messages", each bumping its `version`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    delete,
    exists,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from chat.auth.principal import Account
from chat.models import Mention, Message, MessageVersion, Reaction, User

_messages = cast(Table, Message.__table__)
_users = cast(Table, User.__table__)
_versions = cast(Table, MessageVersion.__table__)
_reactions = cast(Table, Reaction.__table__)
_mentions = cast(Table, Mention.__table__)
_deleter = _users.alias("deleter")
_replied = _messages.alias("replied")
# How much of an answered message a reply quotes.
EXCERPT_CHARS = 120
# Messages with their author's account (if any), who deleted them, and the message they
# answer: every read joins these by primary key.
_WITH_AUTHOR = (
    _messages.outerjoin(_users, _users.c.id == _messages.c.user_id)
    .outerjoin(_deleter, _deleter.c.id == _messages.c.deleted_by)
    .outerjoin(_replied, _replied.c.id == _messages.c.reply_to)
)
_COLUMNS = (
    _messages.c.id,
    _messages.c.body,
    _messages.c.author,
    _messages.c.client_id,
    _messages.c.created_at,
    _messages.c.user_id,
    _messages.c.room_id,
    _messages.c.reply_to,
    _messages.c.edited_at,
    _messages.c.deleted_at,
    _messages.c.deleted_by,
    _messages.c.version,
    _messages.c.mentions_room,
    _users.c.username,
    _users.c.display_name,
    _users.c.role,
    _deleter.c.username.label("deleter_username"),
    _deleter.c.display_name.label("deleter_display_name"),
    _deleter.c.role.label("deleter_role"),
    func.substr(_replied.c.body, 1, EXCERPT_CHARS).label("reply_excerpt"),
    _replied.c.author.label("reply_author"),
    _replied.c.user_id.label("reply_user_id"),
    _replied.c.deleted_at.label("reply_deleted_at"),
)


@dataclass(frozen=True, slots=True)
class ReplyRef:
    """The message a reply answers, as the reply quotes it."""

    id: int
    excerpt: str  # empty once the original is deleted
    author: str | None
    user_id: int | None
    deleted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "excerpt": self.excerpt,
            "author": self.author,
            "user_id": self.user_id,
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class ReactionGroup:
    emoji: str
    user_ids: tuple[int, ...]  # in the order they reacted

    def to_dict(self) -> dict[str, Any]:
        return {"emoji": self.emoji, "count": len(self.user_ids), "users": list(self.user_ids)}


@dataclass(frozen=True, slots=True)
class VersionRecord:
    body: str
    written_at: datetime
    replaced_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    body: str
    author: str | None
    client_id: str | None
    created_at: datetime
    room_id: int
    user: Account | None = None
    reply: ReplyRef | None = None
    mentions_room: bool = False


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A stored message, as read from (or just written to) the table."""

    id: int
    body: str
    author: str | None
    client_id: str | None
    created_at: datetime
    room_id: int
    user: Account | None = None  # the signed-in author; None for a guest
    seq: int | None = None  # its event in the change log, when the writer just stored it
    reply: ReplyRef | None = None
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    deleted_by: Account | None = None
    version: int = 0
    reactions: tuple[ReactionGroup, ...] = ()
    mentions_room: bool = False

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


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
        records = await self._hydrated([_record(row) for row in result])
        return {record.client_id: record for record in records if record.client_id is not None}

    async def by_ids(self, ids: Iterable[int]) -> dict[int, MessageRecord]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        result = await self._session.execute(
            select(*_COLUMNS).select_from(_WITH_AUTHOR).where(_messages.c.id.in_(wanted))
        )
        records = await self._hydrated([_record(row) for row in result])
        return {record.id: record for record in records}

    async def newest(self, room_id: int, limit: int) -> Page:
        statement = (
            select(*_COLUMNS)
            .select_from(_WITH_AUTHOR)
            .where(_messages.c.room_id == room_id)
            .order_by(_messages.c.id.desc())
            .limit(limit + 1)
        )
        rows = [_record(row) for row in await self._session.execute(statement)]
        page = await self._hydrated(rows[:limit][::-1])
        return Page(messages=page, has_older=len(rows) > limit, has_newer=False)

    async def before(self, room_id: int, cursor: int, limit: int) -> Page:
        # The newest row below the cursor is the page's last, so "anything newer than the
        # page" is "anything at or above the cursor": one statement answers both questions.
        key = _messages.c.id
        in_room = _messages.c.room_id == room_id
        newer = in_room & (key >= cursor)
        statement = (
            _with_flag(select(*_COLUMNS).select_from(_WITH_AUTHOR), newer)
            .where(in_room, key < cursor)
            .order_by(key.desc())
        )
        rows = (await self._session.execute(statement.limit(limit + 1))).all()
        page = await self._hydrated([_record(row) for row in rows[:limit]][::-1])
        has_newer = bool(rows[0].flag) if rows else await self._exists(newer)
        return Page(messages=page, has_older=len(rows) > limit, has_newer=has_newer)

    async def after(self, room_id: int, cursor: int, limit: int) -> Page:
        # Compare with the cursor itself, never cursor + 1: the largest cursor is the largest
        # integer the column holds.
        key = _messages.c.id
        in_room = _messages.c.room_id == room_id
        older = in_room & (key <= cursor)
        statement = (
            _with_flag(select(*_COLUMNS).select_from(_WITH_AUTHOR), older)
            .where(in_room, key > cursor)
            .order_by(key)
        )
        rows = (await self._session.execute(statement.limit(limit + 1))).all()
        page = await self._hydrated([_record(row) for row in rows[:limit]])
        has_older = bool(rows[0].flag) if rows else await self._exists(older)
        return Page(messages=page, has_older=has_older, has_newer=len(rows) > limit)

    async def around(self, room_id: int, anchor: int, limit: int) -> Page | None:
        """The page centred on message `anchor`: up to (limit - 1) // 2 older messages, the
        anchor, and the newer ones that fill the page; None when the anchor is not a message of
        this room. One statement: two keyset scans from the anchor, each one row longer than it
        shows, which is how it knows whether anything lies beyond either end."""
        older_wanted = (limit - 1) // 2
        newer_wanted = limit - older_wanted  # the anchor and what follows it
        key = _messages.c.id
        in_room = _messages.c.room_id == room_id
        older = (
            select(key).where(in_room, key < anchor).order_by(key.desc()).limit(older_wanted + 1)
        ).subquery()
        newer = select(key).where(in_room, key >= anchor).order_by(key).limit(newer_wanted + 1)
        ids = union_all(select(older.c.id), select(newer.subquery().c.id)).subquery()
        statement = (
            select(*_COLUMNS)
            .select_from(_WITH_AUTHOR)
            .where(key.in_(select(ids.c.id)))
            .order_by(key)
        )
        rows = [_record(row) for row in await self._session.execute(statement)]
        position = next((i for i, row in enumerate(rows) if row.id >= anchor), len(rows))
        if position == len(rows) or rows[position].id != anchor:
            return None
        below, above = rows[:position], rows[position:]
        page = below[-older_wanted:] if older_wanted else []
        page += above[:newer_wanted]
        return Page(
            messages=await self._hydrated(page),
            has_older=len(below) > older_wanted,
            has_newer=len(above) > newer_wanted,
        )

    async def _exists(self, condition: ColumnElement[bool]) -> bool:
        return bool(await self._session.scalar(select(exists().where(condition))))

    async def _hydrated(self, records: list[MessageRecord]) -> list[MessageRecord]:
        """The records with their reactions. Only a message that ever changed (version > 0)
        can have any, so a page of untouched messages costs no extra query."""
        changed = [record.id for record in records if record.version > 0 and not record.deleted]
        if not changed:
            return records
        reactions = await self.reactions_of(changed)
        return [
            replace(record, reactions=reactions[record.id]) if record.id in reactions else record
            for record in records
        ]

    # ---- changes to stored messages ----

    async def locked(self, message_id: int) -> MessageRecord | None:
        """The message, its row locked until the transaction ends (PostgreSQL; SQLite's writer
        holds the whole database already), so concurrent changes queue up in log order."""
        statement = select(*_COLUMNS).select_from(_WITH_AUTHOR).where(_messages.c.id == message_id)
        if self._session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(of=_messages)
        row = (await self._session.execute(statement)).first()
        if row is None:
            return None
        (record,) = await self._hydrated([_record(row)])
        return record

    async def edit(self, record: MessageRecord, body: str, *, now: datetime) -> None:
        """Replace the body, keeping the one it replaces for the room's moderators."""
        await self._session.execute(
            insert(_versions).values(
                message_id=record.id,
                body=record.body,
                written_at=record.edited_at or record.created_at,
                replaced_at=now,
            )
        )
        await self._session.execute(
            update(_messages)
            .where(_messages.c.id == record.id)
            .values(body=body, edited_at=now, version=_messages.c.version + 1)
        )

    async def delete(self, record: MessageRecord, *, by: int | None, now: datetime) -> None:
        """Leave a tombstone: the row keeps its id, place, author and time; its body, earlier
        bodies, reactions and mentions are gone from the database."""
        await self._session.execute(delete(_versions).where(_versions.c.message_id == record.id))
        await self._session.execute(delete(_reactions).where(_reactions.c.message_id == record.id))
        await self._session.execute(delete(_mentions).where(_mentions.c.message_id == record.id))
        await self._session.execute(
            update(_messages)
            .where(_messages.c.id == record.id)
            .values(
                body="",
                deleted_at=now,
                deleted_by=by,
                mentions_room=False,
                version=_messages.c.version + 1,
            )
        )

    async def versions(self, message_id: int) -> list[VersionRecord]:
        rows = await self._session.execute(
            select(_versions.c.body, _versions.c.written_at, _versions.c.replaced_at)
            .where(_versions.c.message_id == message_id)
            .order_by(_versions.c.id)
        )
        return [VersionRecord(body=b, written_at=w, replaced_at=r) for b, w, r in rows]

    async def reactions_of(
        self, message_ids: Sequence[int]
    ) -> dict[int, tuple[ReactionGroup, ...]]:
        rows = await self._session.execute(
            select(_reactions.c.message_id, _reactions.c.emoji, _reactions.c.user_id)
            .where(_reactions.c.message_id.in_(sorted(set(message_ids))))
            .order_by(_reactions.c.created_at, _reactions.c.user_id)
        )
        grouped: dict[int, dict[str, list[int]]] = {}
        for message_id, emoji, user_id in rows:
            grouped.setdefault(int(message_id), {}).setdefault(emoji, []).append(int(user_id))
        return {
            message_id: tuple(
                ReactionGroup(emoji, tuple(users)) for emoji, users in by_emoji.items()
            )
            for message_id, by_emoji in grouped.items()
        }

    async def react(
        self, message_id: int, *, user_id: int, emoji: str, on: bool, now: datetime
    ) -> bool:
        """Add (on) or take back a reaction; whether anything changed."""
        statement: Executable
        if on:
            dialect = self._session.get_bind().dialect.name
            make_insert = sqlite_insert if dialect == "sqlite" else postgres_insert
            statement = (
                make_insert(_reactions)
                .values(message_id=message_id, user_id=user_id, emoji=emoji, created_at=now)
                .on_conflict_do_nothing()
            )
        else:
            statement = delete(_reactions).where(
                _reactions.c.message_id == message_id,
                _reactions.c.user_id == user_id,
                _reactions.c.emoji == emoji,
            )
        changed = bool((await self._session.execute(statement)).rowcount)  # type: ignore[attr-defined]
        if changed:
            await self._session.execute(
                update(_messages)
                .where(_messages.c.id == message_id)
                .values(version=_messages.c.version + 1)
            )
        return changed

    async def add_mentions(self, rows: Sequence[tuple[int, int, int]]) -> None:
        """(user id, room id, message id) rows."""
        if rows:
            await self._session.execute(
                insert(_mentions),
                [{"user_id": u, "room_id": r, "message_id": m} for u, r, m in rows],
            )

    async def replace_mentions(self, message_id: int, rows: Sequence[tuple[int, int, int]]) -> None:
        await self._session.execute(delete(_mentions).where(_mentions.c.message_id == message_id))
        await self.add_mentions(rows)

    async def set_mentions_room(self, message_id: int, value: bool) -> None:
        await self._session.execute(
            update(_messages).where(_messages.c.id == message_id).values(mentions_room=value)
        )

    async def reply_target(self, message_id: int) -> tuple[ReplyRef, int] | None:
        """The message as a reply quotes it, and its room."""
        row = (
            await self._session.execute(
                select(
                    _messages.c.id,
                    func.substr(_messages.c.body, 1, EXCERPT_CHARS),
                    _messages.c.author,
                    _messages.c.user_id,
                    _messages.c.deleted_at,
                    _messages.c.room_id,
                ).where(_messages.c.id == message_id)
            )
        ).first()
        if row is None:
            return None
        deleted = row[4] is not None
        reply = ReplyRef(
            id=int(row[0]),
            excerpt="" if deleted else (row[1] or ""),
            author=row[2],
            user_id=row[3],
            deleted=deleted,
        )
        return reply, int(row[5])

    async def room_of(self, message_id: int) -> int | None:
        found = await self._session.scalar(
            select(_messages.c.room_id).where(_messages.c.id == message_id)
        )
        return int(found) if found is not None else None


def _values(drafts: Sequence[NewMessage]) -> list[dict[str, Any]]:
    return [
        {
            "body": new.body,
            "author": new.author,
            "client_id": new.client_id,
            "created_at": new.created_at,
            "user_id": new.user.id if new.user is not None else None,
            "room_id": new.room_id,
            "reply_to": new.reply.id if new.reply is not None else None,
            "mentions_room": new.mentions_room,
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
        room_id=new.room_id,
        user=new.user,
        reply=new.reply,
        mentions_room=new.mentions_room,
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
        room_id=row.room_id,
        reply=(
            ReplyRef(
                id=row.reply_to,
                excerpt="" if row.reply_deleted_at is not None else (row.reply_excerpt or ""),
                author=row.reply_author,
                user_id=row.reply_user_id,
                deleted=row.reply_deleted_at is not None,
            )
            if row.reply_to is not None
            else None
        ),
        edited_at=row.edited_at,
        deleted_at=row.deleted_at,
        deleted_by=(
            Account(
                id=row.deleted_by,
                username=row.deleter_username,
                display_name=row.deleter_display_name,
                role=row.deleter_role,
            )
            if row.deleted_by is not None
            else None
        ),
        version=row.version,
        mentions_room=bool(row.mentions_room),
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
