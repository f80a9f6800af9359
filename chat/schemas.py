"""Wire formats, without I/O: parse and validate what clients send, build what they receive."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chat.auth.principal import Account
from chat.errors import ClientError
from chat.models import MAX_CLIENT_ID_CHARS
from chat.rooms.names import GENERAL as GENERAL_ROOM
from chat.rooms.names import looks_like_room_name
from chat.settings import Settings

# A cursor must fit the id column (a signed 64-bit integer on PostgreSQL).
MAX_CURSOR = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_chars: int
    max_author_chars: int
    max_frame_bytes: int
    max_protocol_frame_bytes: int = 64 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_message_chars=settings.max_message_chars,
            max_author_chars=settings.max_author_chars,
            max_frame_bytes=settings.max_frame_bytes,
            max_protocol_frame_bytes=settings.max_protocol_frame_bytes,
        )


@dataclass(frozen=True, slots=True)
class Draft:
    """A message a client asked to post, validated but not stored yet."""

    body: str
    author: str | None = None
    client_id: str | None = None
    # The signed-in author; None for a guest, whose `author` is a name they typed.
    user: Account | None = None
    # The room it is for (a Tornado-era frame names none: general), and its id once resolved.
    room: str = GENERAL_ROOM
    room_id: int | None = None
    reply_to: int | None = None  # the id of the message it answers (same room)

    def by(self, account: Account | None) -> Draft:
        """The draft as posted by `account`: a signed-in author cannot choose a name per
        message, so any `author` the client sent is dropped."""
        if account is None:
            return self
        return replace(self, author=None, user=account)

    def in_room(self, name: str, room_id: int) -> Draft:
        return replace(self, room=name, room_id=room_id)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A committed message as every reader sees it, with its HTML rendered once."""

    id: int
    body: str
    author: str | None
    client_id: str | None
    created_at: str  # the wire format: ISO 8601 in UTC with microseconds and a Z
    html: str
    user: Account | None = None
    room: str = GENERAL_ROOM
    reply_to: dict[str, Any] | None = None
    edited_at: str | None = None
    deleted: bool = False
    deleted_by: Account | None = None
    reactions: tuple[dict[str, Any], ...] = ()
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "message",
            "room": self.room,
            "id": self.id,
            "body": self.body,
            "html": self.html,
            "author": self.author,
            "created_at": self.created_at,
            "client_id": self.client_id,
            "user": self.user.public() if self.user is not None else None,
            "reply_to": self.reply_to,
            "edited_at": self.edited_at,
            "deleted": self.deleted,
            "deleted_by": self.deleted_by.public() if self.deleted_by is not None else None,
            "reactions": list(self.reactions),
            "version": self.version,
        }

    def to_frame(self) -> str:
        return dumps(self.to_dict())


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    limit: int
    before: int | None = None
    after: int | None = None
    around: int | None = None  # a message id: the page centred on it


def format_timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def error_payload(error: ClientError) -> dict[str, Any]:
    return {
        "type": "error",
        "error": error.code,
        "detail": error.detail,
        "client_id": error.client_id,
    }


def error_frame(error: ClientError) -> str:
    return dumps(error_payload(error))


@dataclass(frozen=True, slots=True)
class RoomCommand:
    """`{"type": "subscribe" | "unsubscribe", "room": <name>}` from a socket."""

    action: str
    room: str


@dataclass(frozen=True, slots=True)
class MessageCommand:
    """A change to a stored message from a socket:
    `{"type": "edit", "room", "id", "body"}`, `{"type": "delete", "room", "id"}`,
    `{"type": "react", "room", "id", "emoji", "on": true|false}` (each may carry `client_id`,
    which an error about it names)."""

    action: str
    room: str
    message_id: int
    body: object = None
    emoji: str = ""
    on: bool = True
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class VisibilityCommand:
    """`{"type": "presence", "state": "hidden" | "visible"}`: the page's tab was hidden or
    shown (every tab hidden for a while makes its person `away`)."""

    hidden: bool


SocketCommand = Draft | RoomCommand | MessageCommand | VisibilityCommand
# Commands about one room: listen to it, stop listening, say you are typing in it, watch who
# of its members is online.
ROOM_COMMANDS = ("subscribe", "unsubscribe", "typing", "watch")
MESSAGE_COMMANDS = ("edit", "delete", "react")


def parse_socket_frame(text: str, limits: Limits) -> SocketCommand:
    """Parse one text frame from `/chatsocket` into a command, or raise ClientError.

    A frame without `type` (or with "message") is a message, as in the Tornado demo."""
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_frame_bytes:
        raise ClientError(
            "frame_too_large", f"frames are limited to {limits.max_frame_bytes} bytes"
        )
    try:
        payload = json.loads(text)
    except ValueError:
        raise ClientError("invalid_json", "the frame is not valid JSON") from None
    kind = payload.get("type") if isinstance(payload, dict) else None
    if kind is None or kind == "message":
        return parse_draft(payload, limits)
    if kind in ROOM_COMMANDS:
        room = payload.get("room")
        if not isinstance(room, str) or not looks_like_room_name(room):
            raise ClientError("invalid_room", "'room' must be a room name")
        return RoomCommand(action=str(kind), room=room)
    if kind in MESSAGE_COMMANDS:
        return _parse_message_command(str(kind), payload)
    if kind == "presence":
        state = payload.get("state")
        if state not in ("hidden", "visible"):
            raise ClientError("invalid_state", "'state' is 'hidden' or 'visible'")
        return VisibilityCommand(hidden=state == "hidden")
    raise ClientError(
        "unknown_type",
        f"unknown frame type {str(kind)[:40]!r}: message, subscribe, unsubscribe, typing, "
        "watch, presence, edit, delete, react",
    )


def _parse_message_command(kind: str, payload: dict[str, Any]) -> MessageCommand:
    client_id = _parse_client_id(payload.get("client_id"))
    try:
        room = parse_room_field(payload.get("room"))
        message_id = parse_message_id(payload.get("id"), "id")
        assert message_id is not None
        emoji = payload.get("emoji", "")
        on = payload.get("on", True)
        if kind == "react" and (not isinstance(emoji, str) or not isinstance(on, bool)):
            raise ClientError("invalid_reaction", "'emoji' must be a string and 'on' a boolean")
    except ClientError as error:
        error.client_id = client_id
        raise
    return MessageCommand(
        action=kind,
        room=room,
        message_id=message_id,
        body=payload.get("body"),
        emoji=str(emoji),
        on=bool(on),
        client_id=client_id,
    )


def client_id_of(text: str | None, limits: Limits) -> str | None:
    """The valid client_id of a frame that is refused before parsing (say, rate-limited), so
    the client knows which message to resend; None when there is none to be had."""
    if text is None or len(text) > limits.max_frame_bytes:
        return None
    try:
        payload = json.loads(text)
        return _parse_client_id(payload.get("client_id")) if isinstance(payload, dict) else None
    except (ValueError, ClientError):
        return None


def parse_draft(payload: object, limits: Limits) -> Draft:
    """Validate a decoded JSON value as a message draft (socket frame or API body)."""
    if not isinstance(payload, dict):
        raise ClientError("invalid_frame", f"expected a JSON object, got {type(payload).__name__}")
    client_id = _parse_client_id(payload.get("client_id"))
    try:
        body = _parse_body(payload, limits)
        author = _parse_author(payload.get("author"), limits)
        room = parse_room_field(payload.get("room"))
        reply_to = parse_message_id(payload.get("reply_to"), "reply_to", optional=True)
    except ClientError as error:
        error.client_id = client_id
        raise
    return Draft(body=body, author=author, client_id=client_id, room=room, reply_to=reply_to)


def json_integer(value: object) -> int | None:
    """An integer from JSON, None for anything else. `42.0` is one: JSON Schema (and so the
    OpenAPI document) counts a number without a fraction as an integer, and some encoders
    write every number so."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_message_id(value: object, name: str, *, optional: bool = False) -> int | None:
    """A message id from JSON: a positive integer (or absent, when optional)."""
    if value is None and optional:
        return None
    number = json_integer(value)
    if number is None or not 1 <= number <= MAX_CURSOR:
        raise ClientError(f"invalid_{name}", f"{name!r} must be a message id")
    return number


def parse_room_field(value: object) -> str:
    """The `room` a frame names (general when it names none), or ClientError."""
    if value is None:
        return GENERAL_ROOM
    if not isinstance(value, str) or not looks_like_room_name(value):
        raise ClientError("invalid_room", "'room' must be a room name")
    return value


def _parse_body(payload: Mapping[str, Any], limits: Limits) -> str:
    if "body" not in payload:
        raise ClientError("missing_body", "the message has no 'body' field")
    body = payload["body"]
    if not isinstance(body, str):
        raise ClientError("invalid_body", f"'body' must be a string, got {type(body).__name__}")
    if _has_forbidden_characters(body):
        raise ClientError("invalid_body", "'body' contains NUL or unpaired surrogate characters")
    if not body.strip():
        raise ClientError("empty_body", "the message is empty")
    if len(body) > limits.max_message_chars:
        raise ClientError(
            "body_too_long",
            f"the message has {len(body)} characters; the limit is {limits.max_message_chars}",
        )
    return body


def _parse_author(value: object, limits: Limits) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ClientError(
            "invalid_author", f"'author' must be a string, got {type(value).__name__}"
        )
    author = " ".join(value.split())
    if _has_forbidden_characters(author):
        raise ClientError(
            "invalid_author", "'author' contains NUL or unpaired surrogate characters"
        )
    if len(author) > limits.max_author_chars:
        raise ClientError(
            "invalid_author", f"'author' is limited to {limits.max_author_chars} characters"
        )
    return author or None


def _parse_client_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ClientError(
            "invalid_client_id", f"'client_id' must be a string, got {type(value).__name__}"
        )
    if not 1 <= len(value) <= MAX_CLIENT_ID_CHARS or _has_forbidden_characters(value):
        raise ClientError(
            "invalid_client_id",
            f"'client_id' must have 1 to {MAX_CLIENT_ID_CHARS} characters, no NUL",
        )
    return value


def _has_forbidden_characters(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_history_query(
    params: Mapping[str, list[str]], *, default_limit: int, max_limit: int
) -> HistoryQuery:
    """Validate `GET /api/messages` query parameters (each name mapped to all its values)."""
    unknown = sorted(set(params) - {"limit", "before", "after", "around"})
    if unknown:
        raise ClientError("unknown_parameter", f"unknown query parameter {unknown[0]!r}")
    limit = _single_integer(params, "limit", low=1)
    before = _single_integer(params, "before", low=1)
    after = _single_integer(params, "after", low=0)
    around = _single_integer(params, "around", low=1)
    if sum(cursor is not None for cursor in (before, after, around)) > 1:
        raise ClientError(
            "conflicting_cursors", "pass one of 'before', 'after' and 'around', not several"
        )
    effective = default_limit if limit is None else min(limit, max_limit)
    return HistoryQuery(limit=effective, before=before, after=after, around=around)


def _single_integer(params: Mapping[str, list[str]], name: str, *, low: int) -> int | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ClientError("duplicate_parameter", f"{name!r} was given {len(values)} times")
    raw = values[0]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise ClientError(
            "invalid_parameter", f"{name!r} must be a non-negative integer, got {raw[:40]!r}"
        )
    value = int(raw)
    if value < low or value > MAX_CURSOR:
        raise ClientError(
            "invalid_parameter", f"{name!r} must be between {low} and {MAX_CURSOR}, got {value}"
        )
    return value
