"""Mentions: `@username` names an account; `@room` (from an owner or moderator) the whole room.

Recognised when a message is written (and again when it is edited); only members of the room
are counted as mentioned, apart from their unread count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from chat.auth.principal import Account
from chat.auth.repository import AccountRepository
from chat.rooms.policy import RoomAccess, RoomRecord
from chat.rooms.repository import RoomRepository

ROOM_MENTION = "room"
# The account name syntax, not inside a word or an e-mail address (as chat.rendering marks up).
_MENTION = re.compile(r"(?<![\w@.])@([a-z0-9_][a-z0-9_.-]{0,31})(?![\w-])")
# A message names at most this many people (the rest is not counted).
MAX_MENTIONS = 50


def mentioned_names(body: str) -> set[str]:
    """Every @name with an account's syntax, lower case, trailing dots dropped."""
    if "@" not in body:
        return set()
    return {match.group(1).rstrip(".") for match in _MENTION.finditer(body.lower())}


@dataclass(frozen=True, slots=True)
class Mentions:
    user_ids: frozenset[int]  # members named with @username
    room: bool  # @room, by someone allowed to

    @property
    def empty(self) -> bool:
        return not self.user_ids and not self.room


NONE = Mentions(frozenset(), room=False)


async def resolve(
    session: AsyncSession, *, body: str, room: RoomRecord, author: Account | None
) -> Mentions:
    """Who a message written by `author` in `room` mentions (guests mention nobody)."""
    names = mentioned_names(body)
    if not names or author is None:
        return NONE
    rooms = RoomRepository(session)
    everyone = ROOM_MENTION in names and await _may_mention_room(rooms, room, author)
    names.discard(ROOM_MENTION)
    ids: set[int] = set()
    if names:
        found = await AccountRepository(session).enabled_ids_by_username(
            sorted(names)[:MAX_MENTIONS]
        )
        members = await rooms.memberships_among([(room.id, user) for user in found.values()])
        ids = {user for (_, user) in members if user != author.id}
    return Mentions(frozenset(ids), room=everyone)


async def _may_mention_room(rooms: RoomRepository, room: RoomRecord, author: Account) -> bool:
    membership = await rooms.membership(room.id, author.id)
    # Signed in, so CHAT_GUEST_ACCESS has no say here.
    return RoomAccess(author, room, membership, guest_access="post").can_mention_room()
