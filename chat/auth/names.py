"""Usernames, display names, and the key that makes look-alike names collide.

A username is 1-32 characters of `a-z 0-9 _ . -` (what people type is lower-cased first), so
"unique" is unique case-insensitively. Display names are free text, compared through
`name_key`: Unicode NFKC folding then case folding, so fullwidth "ada", "ADA" and "ada" are one
name. A guest may not take a name whose key equals any account's username or display name.
"""

from __future__ import annotations

import re
import unicodedata

from chat.errors import ClientError
from chat.models import MAX_DISPLAY_NAME_CHARS, MAX_USERNAME_CHARS

_USERNAME = re.compile(rf"[a-z0-9_.\-]{{1,{MAX_USERNAME_CHARS}}}")
_NOT_USERNAME = re.compile(r"[^a-z0-9_.\-]+")
_DASH_RUNS = re.compile(r"-{2,}")
# Names for the server itself and its routes, so no account can pose as them.
RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "chat",
        "guest",
        "anonymous",
        "room",
        "here",
        "everyone",
        "all",
        "me",
        "api",
        "static",
        "login",
        "logout",
        "register",
        "moderator",
    }
)


def name_key(name: str) -> str:
    """The form in which two names that look alike are equal."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    # Folding can produce new composable sequences: normalise once more. Invisible format
    # characters (zero-width spaces and joiners) would make "ada" and "ada\u200b" differ.
    visible = "".join(
        ch for ch in unicodedata.normalize("NFKC", folded) if unicodedata.category(ch) != "Cf"
    )
    return " ".join(visible.split())


def parse_username(value: object) -> str:
    if not isinstance(value, str):
        raise ClientError("invalid_username", "'username' must be a string")
    username = value.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise ClientError(
            "invalid_username",
            f"a username has 1 to {MAX_USERNAME_CHARS} characters: a-z, 0-9, '_', '.', '-'",
        )
    return username


def parse_new_username(value: object) -> str:
    """A username for a new account: also not one of the reserved names."""
    username = parse_username(value)
    if username in RESERVED_USERNAMES:
        raise ClientError("name_taken", f"the username {username!r} is reserved", status=409)
    return username


def username_from_hint(hint: str | None) -> str:
    """A well-formed username made from what an identity provider calls someone.

    Accents are dropped, runs of anything outside `a-z 0-9 _ . -` become one `-`, and the result
    is cut to the maximum length; "user" when nothing is left. It may still be taken or reserved:
    `numbered_username` makes the alternatives.
    """
    folded = unicodedata.normalize("NFKD", hint or "").encode("ascii", "ignore").decode().lower()
    cleaned = _DASH_RUNS.sub("-", _NOT_USERNAME.sub("-", folded)).strip("-._")
    return cleaned[:MAX_USERNAME_CHARS].rstrip("-._") or "user"


def numbered_username(base: str, number: int) -> str:
    """`base-2`, `base-3`, ... cut so the suffix always fits; `base` itself for 1."""
    if number <= 1:
        return base
    suffix = f"-{number}"
    return (base[: MAX_USERNAME_CHARS - len(suffix)].rstrip("-._") or "user") + suffix


def parse_display_name(value: object, *, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ClientError("invalid_display_name", "'display_name' must be a string")
    display = " ".join(value.split())
    if not display:
        return default
    if len(display) > MAX_DISPLAY_NAME_CHARS:
        raise ClientError(
            "invalid_display_name",
            f"a display name has at most {MAX_DISPLAY_NAME_CHARS} characters",
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in display):
        raise ClientError(
            "invalid_display_name", "a display name may not contain control or invisible characters"
        )
    return display
