"""RoomService: rooms, direct messages, members and read positions.

Every change is committed together with its event in the change log, and only then published
(chat.messages' service turns events into frames and hands them to the fan-out). Every question
of who may do what goes to chat.rooms.policy.RoomAccess.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth.principal import Account, Principal, SignedIn
from chat.auth.repository import AccountRepository
from chat.broadcast.base import Envelope
from chat.db import WRITE_EXECUTION_OPTIONS, single_read
from chat.errors import ClientError
from chat.events.records import EventRecord, NewEvent
from chat.events.repository import EventRepository
from chat.rooms.member_rooms import MemberRooms
from chat.rooms.names import (
    GENERAL,
    dm_name,
    looks_like_room_name,
    parse_room_name,
    parse_title,
    parse_topic,
)
from chat.rooms.policy import RoomAccess, RoomRecord, not_found, require_guest_may_look
from chat.rooms.repository import Member, RoomRepository, RoomSummary
from chat.schemas import json_integer

logger = logging.getLogger(__name__)

_IN_CHUNK = 500  # ids per IN (...) list: well under any engine's bound on parameters

# Rooms with more members get no presence (what presence in big rooms costs).
PRESENCE_ROOM_CAP = 500
# A DM holds its starter and up to this many others ("a few"; beyond that, make a room).
MAX_DM_OTHERS = 8

Publish = Callable[[Sequence[EventRecord]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room as one caller sees it (API and page)."""

    summary: RoomSummary
    members: tuple[Account, ...] = ()  # for a DM: who is in it (its title, per viewer)

    def to_dict(self, viewer: Principal) -> dict[str, Any]:
        room = self.summary.room
        membership = self.summary.membership
        payload: dict[str, Any] = {
            "name": room.name,
            "title": self._title(viewer),
            "topic": room.topic,
            "visibility": room.visibility,
            "kind": room.kind,
            "archived": room.archived,
            "member": membership is not None,
            "role": membership.role if membership is not None else None,
            "unread": self.summary.unread,
            "mentions": self.summary.mentions,
            "last_read_id": membership.last_read_id if membership is not None else None,
            "newest_id": self.summary.newest_id,
        }
        if room.is_dm:
            payload["members"] = [account.public() for account in self.members]
        return payload

    def _title(self, viewer: Principal) -> str:
        room = self.summary.room
        if not room.is_dm:
            return room.title
        me = viewer.account.id if isinstance(viewer, SignedIn) else None
        others = [account.display_name for account in self.members if account.id != me]
        return ", ".join(others) or room.title


class RoomService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        guest_access: str,
        publish: Publish,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._guest_access = guest_access
        self._publish = publish
        self._clock = clock
        self._member_rooms = MemberRooms()

    # ---- looking rooms up ----

    async def access(self, principal: Principal, name: str) -> RoomAccess:
        """The caller's standing in the room called `name`: raises not_found when the room
        does not exist *for them* (never existed, or private and not theirs)."""
        require_guest_may_look(principal, self._guest_access)
        if not looks_like_room_name(name):
            raise not_found()
        async with self._reading() as session:
            repository = RoomRepository(session)
            room = await repository.room_by_name(name)
            if room is None:
                raise not_found()
            membership = (
                await repository.membership(room.id, principal.account.id)
                if isinstance(principal, SignedIn)
                else None
            )
        access = RoomAccess.of(principal, room, membership, self._guest_access)
        access.require_see()
        return access

    async def rooms(self, principal: Principal) -> list[RoomView]:
        """Every room the caller may see, with unread counts."""
        user_id = principal.account.id if isinstance(principal, SignedIn) else None
        async with self._reading() as session:
            repository = RoomRepository(session)
            summaries = [
                summary
                for summary in await repository.visible_rooms(user_id)
                if RoomAccess.of(
                    principal, summary.room, summary.membership, self._guest_access
                ).can_see()
            ]
            dm_members = await repository.members_of_rooms(
                [summary.room.id for summary in summaries if summary.room.is_dm]
            )
        views = [
            RoomView(
                summary,
                tuple(member.account for member in dm_members.get(summary.room.id, [])),
            )
            for summary in summaries
        ]
        return views

    async def readable_rooms(self, principal: Principal) -> list[RoomRecord]:
        """Every room the caller may read now, without counts (what search is scoped to)."""
        user_id = principal.account.id if isinstance(principal, SignedIn) else None
        async with self._reading() as session:
            candidates = await RoomRepository(session).readable_candidates(user_id)
        return [
            room
            for room, membership in candidates
            if RoomAccess.of(principal, room, membership, self._guest_access).can_see()
        ]

    async def view(self, access: RoomAccess) -> RoomView:
        async with self._reading() as session:
            repository = RoomRepository(session)
            newest = await repository.newest_message_id(access.room.id)
            membership = access.membership
            unread = mentioned = 0
            if membership is not None:
                unread = await repository.unread_count(
                    access.room.id, membership.user_id, membership.last_read_id
                )
                mentioned = await repository.mention_count(
                    access.room.id, membership.user_id, membership.last_read_id
                )
            members = (
                tuple(member.account for member in await repository.members(access.room.id))
                if access.room.is_dm
                else ()
            )
        return RoomView(
            RoomSummary(access.room, membership, newest or None, unread, mentioned), members
        )

    async def members(self, access: RoomAccess) -> list[Member]:
        async with self._reading() as session:
            return await RoomRepository(session).members(access.room.id)

    async def subscribed_room_ids(self, principal: Principal) -> list[int]:
        """The rooms a new socket starts subscribed to: a member's rooms, or for a guest the
        general room (when guests may read)."""
        if isinstance(principal, SignedIn):
            user_id = principal.account.id
            return await self._member_rooms.of(user_id, lambda: self._room_ids_of(user_id))
        if self._guest_access == "none":
            return []
        async with single_read(self._sessionmaker) as session:
            room = await RoomRepository(session).room_by_name(GENERAL)
        return [room.id] if room is not None else []

    async def _room_ids_of(self, user_id: int) -> list[int]:
        async with single_read(self._sessionmaker) as session:
            return await RoomRepository(session).room_ids_of(user_id)

    def on_changes(self, envelopes: Sequence[Envelope]) -> None:
        """Every node sees every published change here (before its hub): whoever joined or
        left a room has their remembered rooms forgotten."""
        self._member_rooms.on_changes(envelopes)

    async def readable_room_ids(
        self, principal: Principal, public_names: Sequence[str]
    ) -> set[int]:
        """The caller's rooms plus the public rooms named (what a catch-up covers)."""
        async with self._reading() as session:
            repository = RoomRepository(session)
            ids: set[int] = set()
            if isinstance(principal, SignedIn):
                ids.update(await repository.room_ids_of(principal.account.id))
            if isinstance(principal, SignedIn) or self._guest_access != "none":
                ids.update((await repository.public_room_ids(public_names)).values())
        return ids

    async def members_in(
        self, user_ids: Sequence[int], room_ids: Collection[int]
    ) -> set[tuple[int, int]]:
        """(room id, user id) for each of these users who is a member of one of these rooms."""
        found: set[tuple[int, int]] = set()
        rooms = sorted(room_ids)
        async with self._reading() as session:
            repository = RoomRepository(session)
            for start in range(0, len(user_ids), _IN_CHUNK):
                chunk = user_ids[start : start + _IN_CHUNK]
                found |= await repository.memberships_in(chunk, rooms)
        return found

    async def live_memberships(self, user_ids: Sequence[int]) -> set[tuple[int, int]]:
        async with self._reading() as session:
            return await RoomRepository(session).memberships_of_users(user_ids)

    async def private_room_ids(self, room_ids: Sequence[int]) -> set[int]:
        async with self._reading() as session:
            rooms = await RoomRepository(session).rooms_by_ids(room_ids)
        return {room.id for room in rooms.values() if not room.is_public}

    # ---- creating and changing rooms ----

    async def create(self, principal: Principal, payload: dict[str, object]) -> RoomView:
        if not isinstance(principal, SignedIn):
            raise ClientError("unauthorized", "sign in to create a room", status=401)
        name = parse_room_name(payload.get("name"))
        title = parse_title(payload.get("title"), default=name)
        topic = parse_topic(payload.get("topic"))
        visibility = payload.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise ClientError("invalid_visibility", "'visibility' is 'public' or 'private'")
        owner = principal.account
        now = self._clock()
        async with self._writing() as session:
            repository = RoomRepository(session)
            try:
                room = await repository.insert_room(
                    name=name,
                    title=title,
                    topic=topic,
                    visibility=str(visibility),
                    kind="room",
                    created_by=owner.id,
                    now=now,
                )
            except IntegrityError:
                # A private room of that name may exist: "taken" says only that the name is.
                raise ClientError("name_taken", "that room name is taken", status=409) from None
            joined = await self._join(session, room, owner, role="owner", by=None)
        await self._publish([joined] if joined is not None else [])
        logger.info("%s created %s room %s", owner.username, visibility, name)
        return await self.view(await self.access(principal, name))

    async def update(self, access: RoomAccess, payload: dict[str, object]) -> RoomView:
        access.require_manage()
        unknown = sorted(set(payload) - {"title", "topic", "archived"})
        if unknown:
            raise ClientError("unknown_field", f"unknown field {unknown[0]!r}")
        room = access.room
        changes: dict[str, Any] = {}
        if "title" in payload:
            changes["title"] = parse_title(payload["title"], default=room.name)
        if "topic" in payload:
            changes["topic"] = parse_topic(payload["topic"])
        if "archived" in payload:
            if not isinstance(payload["archived"], bool):
                raise ClientError("invalid_archived", "'archived' is true or false")
            changes["archived"] = payload["archived"]
        if not changes:
            return await self.view(access)
        async with self._writing() as session:
            await RoomRepository(session).update_room(room.id, **changes)
            updated = RoomRecord(**{**_fields(room), **changes})
            by = access.account
            events = await EventRepository(session).append(
                [
                    NewEvent(
                        kind="room_updated",
                        created_at=self._clock(),
                        room_id=room.id,
                        user_id=by.id if by is not None else None,
                        data=_data(
                            room=room.name,
                            title=updated.title,
                            topic=updated.topic,
                            archived=updated.archived,
                            by=by.public() if by is not None else None,
                        ),
                    )
                ]
            )
        await self._publish(events)
        return await self.view(
            RoomAccess(access.account, updated, access.membership, self._guest_access)
        )

    async def add_member(self, access: RoomAccess, username: str) -> Member:
        """Join a public room yourself, or (owners and moderators) add someone."""
        signed_in = access.signed_in
        if signed_in is None:
            raise ClientError("unauthorized", "sign in to join a room", status=401)
        target = await self._account(username)
        is_self = target.id == signed_in.id
        if not access.can_add(target_is_self=is_self):
            if access.room.archived:
                raise ClientError("room_archived", "this room is archived: read-only", status=403)
            raise ClientError("forbidden", "only the room's owners and moderators may", status=403)
        async with self._writing() as session:
            event = await self._join(
                session,
                access.room,
                target,
                role="member",
                by=None if is_self else signed_in,
            )
            membership = await RoomRepository(session).membership(access.room.id, target.id)
        assert membership is not None
        if event is not None:
            await self._publish([event])
        return Member(membership, target)

    async def remove_member(self, access: RoomAccess, username: str) -> None:
        """Leave, or (owners and moderators) remove someone: their sockets stop receiving the
        room at once, on every node."""
        signed_in = access.signed_in
        if signed_in is None:
            raise ClientError("unauthorized", "sign in first", status=401)
        target = await self._account(username)
        async with self._reading() as session:
            membership = await RoomRepository(session).membership(access.room.id, target.id)
        if membership is None:
            raise ClientError("not_a_member", f"{target.username!r} is not a member", status=404)
        if not access.can_remove(target=membership):
            raise ClientError("forbidden", "you may not remove that member", status=403)
        by = None if target.id == signed_in.id else signed_in
        async with self._writing() as session:
            removed = await RoomRepository(session).remove_member(access.room.id, target.id)
            events = (
                await EventRepository(session).append(
                    [
                        NewEvent(
                            kind="member_left",
                            created_at=self._clock(),
                            room_id=access.room.id,
                            user_id=target.id,
                            data=_data(
                                room=access.room.name,
                                user=target.public(),
                                by=by.public() if by is not None else None,
                            ),
                        )
                    ]
                )
                if removed
                else []
            )
        await self._publish(events)

    async def mark_read(self, access: RoomAccess, up_to: object) -> int:
        """Move the caller's read position forward to message `up_to`; the unread count left.

        Every tab and device of the user hears of it (a `read` event on their user topic)."""
        membership = access.membership
        if membership is None:
            raise ClientError("not_a_member", "join the room to keep a read position", status=403)
        asked = json_integer(up_to)
        if asked is None or asked < 0:
            raise ClientError("invalid_up_to", "'up_to' must be a message id")
        async with self._writing() as session:
            repository = RoomRepository(session)
            newest = await repository.newest_message_id(access.room.id)
            position = min(asked, newest)  # never past the end: a future message stays unread
            moved = await repository.move_read_position(
                access.room.id, membership.user_id, position
            )
            current = max(position, membership.last_read_id)
            unread = await repository.unread_count(access.room.id, membership.user_id, current)
            mentioned = await repository.mention_count(access.room.id, membership.user_id, current)
            events = (
                await EventRepository(session).append(
                    [
                        NewEvent(
                            kind="read",
                            created_at=self._clock(),
                            room_id=access.room.id,
                            user_id=membership.user_id,
                            data=_data(
                                room=access.room.name,
                                up_to=current,
                                unread=unread,
                                mentions=mentioned,
                            ),
                        )
                    ]
                )
                if moved
                else []
            )
        await self._publish(events)
        return unread

    async def direct_message(self, principal: Principal, usernames: Sequence[str]) -> RoomView:
        """The DM of the caller and these people: found again, or started."""
        if not isinstance(principal, SignedIn):
            raise ClientError("unauthorized", "sign in to send direct messages", status=401)
        others = [await self._account(name) for name in dict.fromkeys(usernames)]
        others = [account for account in others if account.id != principal.account.id]
        if not others or len(others) > MAX_DM_OTHERS:
            raise ClientError(
                "invalid_members", f"a direct message has 1 to {MAX_DM_OTHERS} other people"
            )
        everyone = [principal.account, *others]
        name = dm_name(account.id for account in everyone)
        async with self._writing() as session:
            repository = RoomRepository(session)
            room = await repository.room_by_name(name)
            events: list[EventRecord] = []
            if room is None:
                room = await repository.insert_room(
                    name=name,
                    title=", ".join(sorted(account.username for account in everyone)),
                    topic="",
                    visibility="private",
                    kind="dm",
                    created_by=principal.account.id,
                    now=self._clock(),
                )
                for account in everyone:
                    event = await self._join(session, room, account, role="member", by=None)
                    if event is not None:
                        events.append(event)
            elif await repository.membership(room.id, principal.account.id) is None:
                # The caller left this DM earlier: starting it again brings them back.
                event = await self._join(session, room, principal.account, role="member", by=None)
                if event is not None:
                    events.append(event)
        await self._publish(events)
        return await self.view(await self.access(principal, name))

    async def join_default_rooms(self, account: Account) -> None:
        """A new account joins general and every room an admin marked as default."""
        async with self._writing() as session:
            repository = RoomRepository(session)
            rooms = await repository.rooms_by_ids(await repository.default_room_ids())
            events = [
                event
                for room in rooms.values()
                if (event := await self._join(session, room, account, role="member", by=None))
            ]
        await self._publish(events)

    # ---- helpers ----

    async def _join(
        self,
        session: AsyncSession,
        room: RoomRecord,
        account: Account,
        *,
        role: str,
        by: Account | None,
    ) -> EventRecord | None:
        """Add a membership and its event in the caller's transaction; None if already in.
        A newcomer starts with everything before now read (no wall of old "unread")."""
        repository = RoomRepository(session)
        added = await repository.add_member(
            room_id=room.id,
            user_id=account.id,
            role=role,
            now=self._clock(),
            last_read_id=await repository.newest_message_id(room.id),
        )
        if not added:
            return None
        (event,) = await EventRepository(session).append(
            [
                NewEvent(
                    kind="member_joined",
                    created_at=self._clock(),
                    room_id=room.id,
                    user_id=account.id,
                    data=_data(
                        room=room.name,
                        user=account.public(),
                        role=role,
                        by=by.public() if by is not None else None,
                    ),
                )
            ]
        )
        return event

    async def _account(self, username: str) -> Account:
        async with self._reading() as session:
            record = await AccountRepository(session).user_by_username(username.strip().lower())
        if record is None or record.disabled:
            raise ClientError("no_such_user", f"no user named {username!r}", status=404)
        return record.account

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as session, session.begin():
            await session.connection(execution_options=WRITE_EXECUTION_OPTIONS)
            yield session

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as session:
            yield session


def _data(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _fields(room: RoomRecord) -> dict[str, Any]:
    return {name: getattr(room, name) for name in RoomRecord.__dataclass_fields__}
