"""Typed changes and the topics they travel on.

A change is stored as one row of `events`; its id (`seq` on the wire) orders it among all
changes. Who receives it is its topic: a room's subscribers (`r:<room id>`) or one user's
sockets (`u:<user id>`, for read positions). Membership changes also change the topics a
user's sockets are subscribed to, on every node, in log order: that is their `effect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

EventKind = Literal[
    "message",
    "member_joined",
    "member_left",
    "read",
    "room_updated",
    "message_edited",
    "message_deleted",
    "reactions_changed",
]
# Changes to a stored message, by event kind -> the `change` its frame names.
MESSAGE_CHANGES: dict[str, str] = {
    "message_edited": "edited",
    "message_deleted": "deleted",
    "reactions_changed": "reactions",
}
# Delivered to a room's subscribers...
ROOM_KINDS: frozenset[str] = frozenset(
    {"message", "member_joined", "member_left", "room_updated", *MESSAGE_CHANGES}
)
# ...or to one user alone.
USER_KINDS: frozenset[str] = frozenset({"read"})
# What a user catches up on about themselves even in rooms they can no longer read (being
# removed from a private room is news its former member must get).
ABOUT_THE_USER: frozenset[str] = frozenset({"read", "member_joined", "member_left"})


def room_topic(room_id: int) -> str:
    return f"r:{room_id}"


def user_topic(user_id: int) -> str:
    return f"u:{user_id}"


PRESENCE_PREFIX = "p:"


def presence_topic(room_id: int) -> str:
    """Where a room's presence changes go (ephemeral: never on the log, never replayed)."""
    return f"{PRESENCE_PREFIX}{room_id}"


def parse_topic(topic: str) -> tuple[str, int] | None:
    """("r", id) or ("u", id), or None for anything else."""
    prefix, _, raw = topic.partition(":")
    if prefix not in ("r", "u") or not raw.isdigit():
        return None
    return prefix, int(raw)


@dataclass(frozen=True, slots=True)
class Effect:
    """What delivering a change does to subscriptions: `join` subscribes the user's sockets to
    the room before the frame is delivered, `leave` unsubscribes them after it."""

    action: Literal["join", "leave"]
    user_id: int
    room_id: int

    def encode(self) -> str:
        return f"{self.action[0]}:{self.user_id}:{self.room_id}"

    @classmethod
    def decode(cls, text: str) -> Effect | None:
        parts = text.split(":")
        if len(parts) != 3 or parts[0] not in ("j", "l") or not all(p.isdigit() for p in parts[1:]):
            return None
        return cls("join" if parts[0] == "j" else "leave", int(parts[1]), int(parts[2]))


@dataclass(frozen=True, slots=True)
class NewEvent:
    kind: str  # EventKind
    created_at: datetime
    room_id: int | None = None
    user_id: int | None = None
    message_id: int | None = None
    data: str | None = None  # JSON


@dataclass(frozen=True, slots=True)
class EventRecord:
    seq: int
    kind: str
    created_at: datetime
    room_id: int | None
    user_id: int | None
    message_id: int | None
    data: str | None

    @property
    def topic(self) -> str:
        if self.kind in USER_KINDS:
            assert self.user_id is not None, f"event {self.seq} ({self.kind}) has no user"
            return user_topic(self.user_id)
        assert self.room_id is not None, f"event {self.seq} ({self.kind}) has no room"
        return room_topic(self.room_id)

    @property
    def purge(self) -> int | None:
        """The message whose renderings every node must forget (its text changed or is gone)."""
        if self.kind in ("message_edited", "message_deleted"):
            return self.message_id
        return None

    @property
    def effect(self) -> Effect | None:
        if self.room_id is None or self.user_id is None:
            return None
        if self.kind == "member_joined":
            return Effect("join", self.user_id, self.room_id)
        if self.kind == "member_left":
            return Effect("leave", self.user_id, self.room_id)
        return None
