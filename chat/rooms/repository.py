"""RoomRepository: the only code that queries rooms and memberships.

It receives its session and never commits: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from chat.auth.principal import Account
from chat.models import Membership, Mention, Message, Room, User
from chat.rooms.policy import MembershipRecord, RoomRecord

_rooms = cast(Table, Room.__table__)
_memberships = cast(Table, Membership.__table__)
_messages = cast(Table, Message.__table__)
_users = cast(Table, User.__table__)
_mentions = cast(Table, Mention.__table__)

# Unread counts stop at this many: "999+" is as informative as 48,213 and costs far less.
UNREAD_CAP = 1000


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """A room as one caller's room list shows it."""

    room: RoomRecord
    membership: MembershipRecord | None
    newest_id: int | None
    unread: int
    mentions: int = 0  # unread messages that name the user (or @room), counted apart


@dataclass(frozen=True, slots=True)
class Member:
    membership: MembershipRecord
    account: Account


class RoomRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ---- rooms ----

    async def room_by_name(self, name: str) -> RoomRecord | None:
        row = (await self._session.execute(select(_rooms).where(_rooms.c.name == name))).first()
        return _room(row) if row is not None else None

    async def rooms_by_ids(self, ids: Sequence[int]) -> dict[int, RoomRecord]:
        if not ids:
            return {}
        rows = await self._session.execute(select(_rooms).where(_rooms.c.id.in_(sorted(set(ids)))))
        return {int(row.id): _room(row) for row in rows}

    async def insert_room(
        self,
        *,
        name: str,
        title: str,
        topic: str,
        visibility: str,
        kind: str,
        created_by: int | None,
        now: datetime,
    ) -> RoomRecord:
        """Raises IntegrityError when the name is taken."""
        result = await self._session.execute(
            insert(_rooms)
            .values(
                name=name,
                title=title,
                topic=topic,
                visibility=visibility,
                kind=kind,
                archived=False,
                is_default=False,
                created_by=created_by,
                created_at=now,
            )
            .returning(_rooms.c.id)
        )
        return RoomRecord(
            id=int(result.scalar_one()),
            name=name,
            title=title,
            topic=topic,
            visibility=visibility,
            kind=kind,
            archived=False,
            is_default=False,
            created_by=created_by,
            created_at=now,
        )

    async def update_room(self, room_id: int, **values: Any) -> None:
        await self._session.execute(update(_rooms).where(_rooms.c.id == room_id).values(**values))

    async def default_room_ids(self) -> list[int]:
        rows = await self._session.execute(
            select(_rooms.c.id).where(_rooms.c.is_default.is_(True)).order_by(_rooms.c.id)
        )
        return [int(i) for i in rows.scalars()]

    async def public_room_ids(self, names: Sequence[str]) -> dict[str, int]:
        if not names:
            return {}
        rows = await self._session.execute(
            select(_rooms.c.name, _rooms.c.id).where(
                _rooms.c.name.in_(sorted(set(names))), _rooms.c.visibility == "public"
            )
        )
        return {name: int(room_id) for name, room_id in rows}

    async def newest_message_id(self, room_id: int) -> int:
        newest = await self._session.scalar(
            select(func.max(_messages.c.id)).where(_messages.c.room_id == room_id)
        )
        return int(newest or 0)

    async def visible_rooms(self, user_id: int | None) -> list[RoomSummary]:
        """Public rooms, and the rooms and DMs the user belongs to, each with the newest message
        id and the user's unread count (messages by others above their read position)."""
        member = _memberships.alias("member")
        joined = _rooms.outerjoin(
            member,
            and_(member.c.room_id == _rooms.c.id, member.c.user_id == literal(user_id or 0)),
        )
        newest = (
            select(func.max(_messages.c.id))
            .where(_messages.c.room_id == _rooms.c.id)
            .scalar_subquery()
        )
        unread_rows = (
            select(literal(1))
            .where(
                _messages.c.room_id == _rooms.c.id,
                _messages.c.id > member.c.last_read_id,
                or_(_messages.c.user_id.is_(None), _messages.c.user_id != member.c.user_id),
            )
            .limit(UNREAD_CAP)
            .correlate(_rooms, member)
            .subquery()
        )
        unread = select(func.count()).select_from(unread_rows).scalar_subquery()
        mentions = _mention_count(_rooms.c.id, member.c.user_id, member.c.last_read_id)
        statement = (
            select(
                _rooms,
                member.c.role,
                member.c.joined_at,
                member.c.last_read_id,
                member.c.user_id.label("member_user_id"),
                newest.label("newest_id"),
                unread.label("unread"),
                mentions.label("mentions"),
            )
            .select_from(joined)
            .where(or_(_rooms.c.visibility == "public", member.c.user_id.is_not(None)))
            .order_by(_rooms.c.kind, _rooms.c.name)
        )
        summaries = []
        for row in await self._session.execute(statement):
            membership = _joined_membership(row)
            summaries.append(
                RoomSummary(
                    room=_room(row),
                    membership=membership,
                    newest_id=int(row.newest_id) if row.newest_id is not None else None,
                    unread=int(row.unread or 0) if membership is not None else 0,
                    mentions=int(row.mentions or 0) if membership is not None else 0,
                )
            )
        return summaries

    async def readable_candidates(
        self, user_id: int | None
    ) -> list[tuple[RoomRecord, MembershipRecord | None]]:
        """Public rooms and the user's rooms, each with the user's membership: what the policy
        decides readability from, without the counts of `visible_rooms` (search asks this on
        every query)."""
        member = _memberships.alias("member")
        joined = _rooms.outerjoin(
            member,
            and_(member.c.room_id == _rooms.c.id, member.c.user_id == literal(user_id or 0)),
        )
        statement = (
            select(
                _rooms,
                member.c.role,
                member.c.joined_at,
                member.c.last_read_id,
                member.c.user_id.label("member_user_id"),
            )
            .select_from(joined)
            .where(or_(_rooms.c.visibility == "public", member.c.user_id.is_not(None)))
        )
        return [
            (_room(row), _joined_membership(row)) for row in await self._session.execute(statement)
        ]

    # ---- memberships ----

    async def membership(self, room_id: int, user_id: int) -> MembershipRecord | None:
        row = (
            await self._session.execute(
                select(_memberships).where(
                    _memberships.c.room_id == room_id, _memberships.c.user_id == user_id
                )
            )
        ).first()
        return _membership(row) if row is not None else None

    async def room_ids_of(self, user_id: int) -> list[int]:
        rows = await self._session.execute(
            select(_memberships.c.room_id).where(_memberships.c.user_id == user_id)
        )
        return [int(i) for i in rows.scalars()]

    async def memberships_in(
        self, user_ids: Sequence[int], room_ids: Sequence[int]
    ) -> set[tuple[int, int]]:
        """(room id, user id) of the memberships of these users in these rooms."""
        if not user_ids or not room_ids:
            return set()
        rows = await self._session.execute(
            select(_memberships.c.room_id, _memberships.c.user_id).where(
                _memberships.c.user_id.in_(sorted(set(user_ids))),
                _memberships.c.room_id.in_(sorted(set(room_ids))),
            )
        )
        return {(int(room_id), int(user_id)) for room_id, user_id in rows}

    async def memberships_of_users(self, user_ids: Sequence[int]) -> set[tuple[int, int]]:
        """(room id, user id) of every membership of these users."""
        if not user_ids:
            return set()
        rows = await self._session.execute(
            select(_memberships.c.room_id, _memberships.c.user_id).where(
                _memberships.c.user_id.in_(sorted(set(user_ids)))
            )
        )
        return {(int(room_id), int(user_id)) for room_id, user_id in rows}

    async def memberships_among(
        self, pairs: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], MembershipRecord]:
        """The memberships that exist among these (room id, user id) pairs."""
        if not pairs:
            return {}
        rows = await self._session.execute(
            select(_memberships).where(
                tuple_(_memberships.c.room_id, _memberships.c.user_id).in_(sorted(set(pairs)))
            )
        )
        return {(int(row.room_id), int(row.user_id)): _membership(row) for row in rows}

    async def members(self, room_id: int) -> list[Member]:
        return (await self.members_of_rooms([room_id])).get(room_id, [])

    async def members_of_rooms(self, room_ids: Sequence[int]) -> dict[int, list[Member]]:
        """The members of each of these rooms, by username, in one query."""
        if not room_ids:
            return {}
        statement = (
            select(
                _memberships,
                _users.c.username,
                _users.c.display_name,
                _users.c.role.label("account_role"),
            )
            .join(_users, _users.c.id == _memberships.c.user_id)
            .where(_memberships.c.room_id.in_(sorted(set(room_ids))))
            .order_by(_users.c.username)
        )
        members: dict[int, list[Member]] = {}
        for row in await self._session.execute(statement):
            members.setdefault(int(row.room_id), []).append(
                Member(
                    membership=_membership(row),
                    account=Account(
                        id=int(row.user_id),
                        username=row.username,
                        display_name=row.display_name,
                        role=row.account_role,
                    ),
                )
            )
        return members

    async def add_member(
        self, *, room_id: int, user_id: int, role: str, now: datetime, last_read_id: int
    ) -> bool:
        """Add a membership; False when the user was a member already."""
        values = {
            "room_id": room_id,
            "user_id": user_id,
            "role": role,
            "joined_at": now,
            "last_read_id": last_read_id,
        }
        dialect = self._session.get_bind().dialect.name
        make_insert = sqlite_insert if dialect == "sqlite" else postgres_insert
        statement = make_insert(_memberships).values(**values).on_conflict_do_nothing()
        result = await self._session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def remove_member(self, room_id: int, user_id: int) -> bool:
        result = await self._session.execute(
            delete(_memberships).where(
                _memberships.c.room_id == room_id, _memberships.c.user_id == user_id
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def move_read_position(self, room_id: int, user_id: int, up_to: int) -> bool:
        """Move the read position forward (never back); False when it was there already."""
        result = await self._session.execute(
            update(_memberships)
            .where(
                _memberships.c.room_id == room_id,
                _memberships.c.user_id == user_id,
                _memberships.c.last_read_id < up_to,
            )
            .values(last_read_id=up_to)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mention_count(self, room_id: int, user_id: int, after: int) -> int:
        return int(await self._session.scalar(select(_mention_count(room_id, user_id, after))) or 0)

    async def unread_count(self, room_id: int, user_id: int, after: int) -> int:
        rows = (
            select(literal(1))
            .where(
                _messages.c.room_id == room_id,
                _messages.c.id > after,
                or_(_messages.c.user_id.is_(None), _messages.c.user_id != user_id),
            )
            .limit(UNREAD_CAP)
            .subquery()
        )
        return int(await self._session.scalar(select(func.count()).select_from(rows)) or 0)


def _mention_count(room_id: Any, user_id: Any, after: Any) -> Any:
    """Unread messages naming the user, plus unread @room messages by others (each capped)."""
    named = (
        select(literal(1))
        .where(
            _mentions.c.room_id == room_id,
            _mentions.c.user_id == user_id,
            _mentions.c.message_id > after,
        )
        .limit(UNREAD_CAP)
        # In the room list `room_id`, `user_id` and `after` are the outer query's columns: without
        # this the subquery would take rooms and memberships into its own FROM and count the
        # mentions of every room (a subquery in FROM is not correlated by itself).
        .correlate_except(_mentions)
        .subquery()
    )
    everyone = (
        select(literal(1))
        .where(
            _messages.c.room_id == room_id,
            _messages.c.mentions_room.is_(True),
            _messages.c.id > after,
            or_(_messages.c.user_id.is_(None), _messages.c.user_id != user_id),
        )
        .limit(UNREAD_CAP)
        .correlate_except(_messages)
        .subquery()
    )
    return (
        select(func.count()).select_from(named).scalar_subquery()
        + select(func.count()).select_from(everyone).scalar_subquery()
    )


def _room(row: Any) -> RoomRecord:
    return RoomRecord(
        id=int(row.id),
        name=row.name,
        title=row.title,
        topic=row.topic,
        visibility=row.visibility,
        kind=row.kind,
        archived=bool(row.archived),
        is_default=bool(row.is_default),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _joined_membership(row: Any) -> MembershipRecord | None:
    """The membership columns of a room row outer-joined with the user's membership."""
    if row.member_user_id is None:
        return None
    return MembershipRecord(
        room_id=int(row.id),
        user_id=int(row.member_user_id),
        role=row.role,
        joined_at=row.joined_at,
        last_read_id=int(row.last_read_id),
    )


def _membership(row: Any) -> MembershipRecord:
    return MembershipRecord(
        room_id=int(row.room_id),
        user_id=int(row.user_id),
        role=row.role,
        joined_at=row.joined_at,
        last_read_id=int(row.last_read_id),
    )
