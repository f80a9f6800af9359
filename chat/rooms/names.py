"""Room names (URL slugs) and the names of direct-message rooms."""

from __future__ import annotations

import re
from collections.abc import Iterable

from chat.errors import ClientError

MAX_ROOM_NAME_CHARS = 64
MAX_TITLE_CHARS = 100
MAX_TOPIC_CHARS = 500
GENERAL = "general"
DM_PREFIX = "dm-"

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


def parse_room_name(value: object) -> str:
    """A new room's name: lower-case a-z, 0-9 and '-', 1-64 characters, no leading or trailing
    '-' (so it reads well in /r/<name>), and not the shape of a direct-message room's name."""
    if not isinstance(value, str):
        raise ClientError("invalid_name", "'name' must be a string")
    name = value.strip().lower()
    if not _SLUG.fullmatch(name):
        raise ClientError(
            "invalid_name",
            f"a room name has 1 to {MAX_ROOM_NAME_CHARS} characters: a-z, 0-9 and '-', "
            "starting and ending with a letter or digit",
        )
    if name.startswith(DM_PREFIX):
        raise ClientError("invalid_name", f"room names starting with {DM_PREFIX!r} are reserved")
    return name


def looks_like_room_name(value: str) -> bool:
    """Whether `value` could name a room (a new one or a DM): cheap to test before a look-up."""
    return len(value) <= MAX_ROOM_NAME_CHARS and _SLUG.fullmatch(value) is not None


def dm_name(user_ids: Iterable[int]) -> str:
    """The one name of the direct-message room of exactly these people (found again, never
    duplicated, whoever starts it)."""
    ids = sorted(set(user_ids))
    return DM_PREFIX + "-".join(str(user_id) for user_id in ids)


def parse_title(value: object, *, default: str) -> str:
    return _text(value, "title", MAX_TITLE_CHARS, default=default)


def parse_topic(value: object) -> str:
    return _text(value, "topic", MAX_TOPIC_CHARS, default="")


def _text(value: object, field: str, limit: int, *, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ClientError(f"invalid_{field}", f"{field!r} must be a string")
    text = " ".join(value.split())
    if "\x00" in text:
        raise ClientError(f"invalid_{field}", f"{field!r} may not contain NUL")
    if len(text) > limit:
        raise ClientError(f"invalid_{field}", f"{field!r} has at most {limit} characters")
    return text or default
