"""Who a request or a socket speaks for: a signed-in account (and how it proved it) or a guest.

The authentication layer (chat.auth.middleware) puts one of these on the ASGI scope as
`scope["user"]`, for HTTP and WebSocket alike; routes read it through `principal_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from starlette.authentication import BaseUser
from starlette.requests import HTTPConnection

Role = Literal["admin", "member"]
CredentialKind = Literal["session", "token", "proxy"]


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the server acts on it."""

    id: int
    username: str
    display_name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def public(self) -> dict[str, Any]:
        """What every viewer sees of an author (the `user` of a message)."""
        return {"id": self.id, "username": self.username, "display_name": self.display_name}

    def to_dict(self) -> dict[str, Any]:
        return {**self.public(), "role": self.role}


@dataclass(frozen=True, slots=True)
class Credential:
    """How a request proved who it is; `id` names the session or token row (None for proxy)."""

    kind: CredentialKind
    id: int | None


class SignedIn(BaseUser):
    __slots__ = ("account", "credential")

    def __init__(self, account: Account, credential: Credential) -> None:
        self.account = account
        self.credential = credential

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.account.display_name

    @property
    def identity(self) -> str:
        return str(self.account.id)

    def __repr__(self) -> str:
        return f"SignedIn({self.account.username!r}, {self.credential.kind})"


class Guest(BaseUser):
    __slots__ = ()

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def display_name(self) -> str:
        return ""

    @property
    def identity(self) -> str:
        return ""

    def __repr__(self) -> str:
        return "Guest()"


GUEST = Guest()
Principal = SignedIn | Guest


def principal_of(connection: HTTPConnection) -> Principal:
    user = connection.scope.get("user")
    return user if isinstance(user, SignedIn | Guest) else GUEST


def account_of(connection: HTTPConnection) -> Account | None:
    principal = principal_of(connection)
    return principal.account if isinstance(principal, SignedIn) else None


@dataclass(frozen=True, slots=True)
class Revocation:
    """Credentials that stopped being valid; every node closes the sockets they opened.

    `whole_user` covers every session and token of the user (sign out everywhere, disabled).
    """

    user_id: int
    session_ids: tuple[int, ...] = ()
    token_ids: tuple[int, ...] = ()
    whole_user: bool = False

    def covers(self, principal: Principal) -> bool:
        if not isinstance(principal, SignedIn) or principal.account.id != self.user_id:
            return False
        if self.whole_user:
            return True
        credential = principal.credential
        if credential.kind == "session":
            return credential.id in self.session_ids
        if credential.kind == "token":
            return credential.id in self.token_ids
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "session_ids": list(self.session_ids),
            "token_ids": list(self.token_ids),
            "whole_user": self.whole_user,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Revocation:
        return cls(
            user_id=int(data["user_id"]),
            session_ids=tuple(int(i) for i in data.get("session_ids", ())),
            token_ids=tuple(int(i) for i in data.get("token_ids", ())),
            whole_user=bool(data.get("whole_user", False)),
        )
