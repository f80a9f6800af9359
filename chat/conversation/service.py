"""ConversationService: edit, delete and react to stored messages; earlier versions.

Each change is made in one transaction together with its event in the change log (the message
row first, locked, then the event: two changes to one message get their `seq` in the order they
changed it), and published after the commit. Who may do what:

* edit: the author, within CHAT_EDIT_WINDOW_SECONDS (unset: always; 0: never), not a deleted
  message, not in an archived room;
* delete: the author, the room's owners and moderators, and admins (not in an archived room);
* react: anyone signed in who may post in the room, on a message that is not deleted;
* earlier versions: the room's owners and moderators, and admins.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.conversation import mentions
from chat.conversation.emoji import MAX_EMOJI_PER_MESSAGE, parse_emoji
from chat.db import WRITE_EXECUTION_OPTIONS
from chat.errors import ClientError
from chat.events.records import EventRecord, NewEvent
from chat.events.repository import EventRepository
from chat.repository import MessageRecord, MessageRepository, VersionRecord
from chat.rooms.policy import RoomAccess
from chat.schemas import Limits, parse_draft
from chat.services import ChatService

logger = logging.getLogger(__name__)


def no_such_message() -> ClientError:
    return ClientError("message_not_found", "no such message in this room", status=404)


@dataclass(frozen=True, slots=True)
class Versions:
    current: MessageRecord
    earlier: list[VersionRecord]  # oldest first


class ConversationService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        chat: ChatService,
        limits: Limits,
        edit_window_seconds: float | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._chat = chat
        self._limits = limits
        self._edit_window = edit_window_seconds
        self._clock = clock

    async def edit(self, access: RoomAccess, message_id: int, body: object) -> None:
        author = access.account
        if author is None:
            raise ClientError("sign_in_required", "sign in to edit your messages", status=401)
        if self._edit_window == 0:
            raise ClientError("editing_disabled", "this server does not allow edits", status=403)
        text = parse_draft({"body": body}, self._limits).body
        now = self._clock()
        async with self._writing() as session:
            record = await self._message(session, access, message_id)
            if record.user is None or record.user.id != author.id:
                raise ClientError("forbidden", "only its author may edit a message", status=403)
            if record.deleted:
                raise ClientError("message_deleted", "that message was deleted", status=409)
            self._require_within_window(record, now)
            access.require_post()
            repository = MessageRepository(session)
            await repository.edit(record, text, now=now)
            found = await mentions.resolve(session, body=text, room=access.room, author=author)
            await repository.replace_mentions(
                record.id, [(user, record.room_id, record.id) for user in found.user_ids]
            )
            await repository.set_mentions_room(record.id, found.room)
            events = await self._event(session, "message_edited", record, by=author.id, now=now)
        await self._chat.publish_events(events)

    async def delete(self, access: RoomAccess, message_id: int) -> None:
        account = access.account
        if account is None:
            raise ClientError("sign_in_required", "sign in to delete messages", status=401)
        now = self._clock()
        async with self._writing() as session:
            record = await self._message(session, access, message_id)
            is_author = record.user is not None and record.user.id == account.id
            if not is_author and not access.can_manage():
                raise ClientError(
                    "forbidden",
                    "only its author, the room's moderators and admins may delete a message",
                    status=403,
                )
            if record.deleted:
                return  # deleting twice changes nothing
            if access.room.archived:
                raise ClientError("room_archived", "this room is archived: read-only", status=403)
            await MessageRepository(session).delete(record, by=account.id, now=now)
            events = await self._event(session, "message_deleted", record, by=account.id, now=now)
        self._chat.forget(record.id)
        logger.info(
            "message %d in %s deleted%s",
            record.id,
            access.room.name,
            "" if is_author else " by a moderator",
            extra={"room": access.room.name, "user": account.id},
        )
        await self._chat.publish_events(events)

    async def react(self, access: RoomAccess, message_id: int, emoji: str, *, on: bool) -> None:
        account = access.account
        if account is None:
            raise ClientError("sign_in_required", "sign in to react", status=401)
        chosen = parse_emoji(emoji)
        access.require_post()
        now = self._clock()
        async with self._writing() as session:
            record = await self._message(session, access, message_id)
            if record.deleted:
                raise ClientError("message_deleted", "that message was deleted", status=409)
            new_emoji = chosen not in {group.emoji for group in record.reactions}
            if on and new_emoji and len(record.reactions) >= MAX_EMOJI_PER_MESSAGE:
                raise ClientError(
                    "too_many_reactions",
                    f"a message carries at most {MAX_EMOJI_PER_MESSAGE} different emoji",
                    status=409,
                )
            changed = await MessageRepository(session).react(
                record.id, user_id=account.id, emoji=chosen, on=on, now=now
            )
            events = (
                await self._event(session, "reactions_changed", record, by=account.id, now=now)
                if changed
                else []
            )
        await self._chat.publish_events(events)

    async def versions(self, access: RoomAccess, message_id: int) -> Versions:
        if not access.can_manage():
            raise ClientError(
                "forbidden",
                "earlier versions are for the room's moderators and admins",
                status=403,
            )
        async with self._sessionmaker() as session:
            repository = MessageRepository(session)
            record = (await repository.by_ids([message_id])).get(message_id)
            if record is None or record.room_id != access.room.id:
                raise no_such_message()
            return Versions(current=record, earlier=await repository.versions(message_id))

    async def message(self, access: RoomAccess, message_id: int) -> MessageRecord:
        async with self._sessionmaker() as session:
            record = (await MessageRepository(session).by_ids([message_id])).get(message_id)
        if record is None or record.room_id != access.room.id:
            raise no_such_message()
        return record

    # ---- helpers ----

    def _require_within_window(self, record: MessageRecord, now: datetime) -> None:
        if self._edit_window is None:
            return
        if now - record.created_at > timedelta(seconds=self._edit_window):
            raise ClientError(
                "edit_window_passed",
                f"messages can be edited for {self._edit_window:g} seconds after they are sent",
                status=403,
            )

    async def _message(
        self, session: AsyncSession, access: RoomAccess, message_id: int
    ) -> MessageRecord:
        record = await MessageRepository(session).locked(message_id)
        if record is None or record.room_id != access.room.id:
            raise no_such_message()
        return record

    async def _event(
        self, session: AsyncSession, kind: str, record: MessageRecord, *, by: int, now: datetime
    ) -> list[EventRecord]:
        return await EventRepository(session).append(
            [
                NewEvent(
                    kind=kind,
                    created_at=now,
                    room_id=record.room_id,
                    user_id=by,
                    message_id=record.id,
                )
            ]
        )

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as session, session.begin():
            await session.connection(execution_options=WRITE_EXECUTION_OPTIONS)
            yield session
