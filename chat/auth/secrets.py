"""Random secrets handed to clients (session cookies, API tokens, invite codes), stored hashed.

A secret has 256 bits from `secrets.token_urlsafe`. Only its SHA-256 is stored: a database leak
gives nothing to sign in with, and a high-entropy secret needs no slow hash. API tokens and
invite codes carry a prefix (`chat_pat_`, `chat_inv_`) so a leaked one is recognisable by secret
scanners and in logs (where chat.logs scrubs it).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

SESSION_PREFIX = ""
TOKEN_PREFIX = "chat_pat_"
INVITE_PREFIX = "chat_inv_"
_HINT_SECRET_CHARS = 4


@dataclass(frozen=True, slots=True)
class NewSecret:
    value: str  # shown to the client once, never stored
    digest: str  # what the database keeps
    hint: str  # the prefix and a few characters, enough to tell tokens apart in a list


def new_secret(prefix: str = SESSION_PREFIX) -> NewSecret:
    value = prefix + secrets.token_urlsafe(32)
    return NewSecret(value=value, digest=digest(value), hint=hint(value, prefix))


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def hint(value: str, prefix: str) -> str:
    return value[: len(prefix) + _HINT_SECRET_CHARS] + "…"
