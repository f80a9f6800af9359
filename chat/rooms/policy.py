"""Who may do what in a room: the one place every path asks (routes, page, socket, catch-up,
relay replay, search).

The rule that matters most: a private room or a direct message the caller does not belong to
does not exist for them. Every refusal about such a room is `not_found`, word for word the
answer for a room that never existed, so nothing (status, code, detail, timing of a look-up)
tells the two apart. Admins are no exception: an admin who is not a member does not see a
private room either (they run the server, they do not read people's private conversations).

* public rooms: everyone signed in reads, posts and joins; guests read (unless
  CHAT_GUEST_ACCESS=none) and post (when it is `post`);
* private rooms and DMs: their members read and post; nobody else sees them;
* owners and moderators (and admins, in rooms they can see) change the title and topic,
  archive, and add and remove members, and mention the whole room with `@room`; moderators
  cannot remove owners or other moderators.

An archived room is read-only for everyone. Direct messages have a fixed set of members: nobody
is added; anyone may leave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chat.auth.access import sign_in_required
from chat.auth.principal import Account, Principal, SignedIn
from chat.errors import ClientError

Visibility = Literal["public", "private"]
RoomKind = Literal["room", "dm"]
MemberRole = Literal["owner", "moderator", "member"]
MANAGING_ROLES = frozenset({"owner", "moderator"})


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: int
    name: str
    title: str
    topic: str
    visibility: str  # Visibility
    kind: str  # RoomKind
    archived: bool
    is_default: bool
    created_by: int | None
    created_at: datetime

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    @property
    def is_dm(self) -> bool:
        return self.kind == "dm"


@dataclass(frozen=True, slots=True)
class MembershipRecord:
    room_id: int
    user_id: int
    role: str  # MemberRole
    joined_at: datetime
    last_read_id: int

    @property
    def manages(self) -> bool:
        return self.role in MANAGING_ROLES


def not_found() -> ClientError:
    return ClientError("not_found", "no such room", status=404)


def require_guest_may_look(principal: Principal, guest_access: str) -> None:
    """Before any room is looked up: with CHAT_GUEST_ACCESS=none a guest is told to sign in
    (401), whatever the name, so a public room, a private one and no room answer alike."""
    if not isinstance(principal, SignedIn) and guest_access == "none":
        raise sign_in_required("read")


@dataclass(frozen=True, slots=True)
class RoomAccess:
    """One caller's standing in one room: what the policy decides from.

    `account` is the signed-in caller, None for a guest."""

    account: Account | None
    room: RoomRecord
    membership: MembershipRecord | None
    guest_access: str  # CHAT_GUEST_ACCESS: post | read | none

    @classmethod
    def of(
        cls,
        principal: Principal,
        room: RoomRecord,
        membership: MembershipRecord | None,
        guest_access: str,
    ) -> RoomAccess:
        account = principal.account if isinstance(principal, SignedIn) else None
        return cls(account, room, membership, guest_access)

    @property
    def signed_in(self) -> Account | None:
        return self.account

    @property
    def is_admin(self) -> bool:
        return self.account is not None and self.account.is_admin

    @property
    def is_member(self) -> bool:
        return self.membership is not None

    def can_see(self) -> bool:
        """Whether the room exists for this caller at all."""
        if not self.room.is_public:
            return self.is_member
        return self.signed_in is not None or self.guest_access != "none"

    def can_post(self) -> bool:
        if not self.can_see() or self.room.archived:
            return False
        if self.signed_in is None:
            return self.room.is_public and self.guest_access == "post"
        return self.room.is_public or self.is_member

    def can_manage(self) -> bool:
        """Change the title and topic, archive or unarchive."""
        if not self.can_see() or self.room.is_dm:
            return False
        return self.is_admin or (self.membership is not None and self.membership.manages)

    def can_mention_room(self) -> bool:
        """Whether `@room` from this caller mentions every member: whoever manages the room."""
        return self.can_manage()

    def can_add(self, *, target_is_self: bool) -> bool:
        """Put someone (or oneself) into the room."""
        if not self.can_see() or self.signed_in is None or self.room.is_dm or self.room.archived:
            return False
        if target_is_self and self.room.is_public:
            return True  # anyone signed in joins a public room
        return self.can_manage()

    def can_remove(self, *, target: MembershipRecord) -> bool:
        """Take someone (or oneself) out of the room."""
        signed_in = self.signed_in
        if not self.can_see() or signed_in is None:
            return False
        if target.user_id == signed_in.id:
            return True  # anyone may leave
        if self.room.is_dm or not self.can_manage():
            return False
        # Moderators remove members; only owners and admins remove owners and moderators.
        if target.role in MANAGING_ROLES:
            return self.is_admin or (
                self.membership is not None and self.membership.role == "owner"
            )
        return True

    # ---- the same decisions as errors ----

    def require_see(self) -> None:
        if not self.can_see():
            raise not_found()

    def require_post(self) -> None:
        self.require_see()
        if self.room.archived:
            raise ClientError("room_archived", "this room is archived: read-only", status=403)
        if self.can_post():
            return
        if self.signed_in is None:
            raise ClientError(
                "sign_in_required", "sign in to post: this server does not let guests", status=401
            )
        raise ClientError("forbidden", "join the room to post in it", status=403)

    def require_manage(self) -> None:
        self.require_see()
        if not self.can_manage():
            raise ClientError("forbidden", "only the room's owners and moderators may", status=403)
