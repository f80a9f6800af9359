"""AccountRepository: the only code that queries users, sessions, tokens, invites, identities.

It receives its session and never commits: the service owns the transaction. Core statements,
plain records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat.auth.principal import Account
from chat.models import ApiToken, AuthSession, ExternalIdentity, Invite, User
from chat.schemas import format_timestamp

_users = cast(Table, User.__table__)
_sessions = cast(Table, AuthSession.__table__)
_tokens = cast(Table, ApiToken.__table__)
_invites = cast(Table, Invite.__table__)
_identities = cast(Table, ExternalIdentity.__table__)

_ACCOUNT_COLUMNS = (_users.c.id, _users.c.username, _users.c.display_name, _users.c.role)


@dataclass(frozen=True, slots=True)
class UserRecord:
    account: Account
    email: str | None
    password_hash: str | None
    disabled: bool
    created_at: datetime
    last_seen_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """What an admin sees of an account (the API's user list, `chat users list --json`)."""
        return {
            **self.account.to_dict(),
            "disabled": self.disabled,
            "created_at": format_timestamp(self.created_at),
            "last_seen_at": _optional_timestamp(self.last_seen_at),
        }


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    account: Account
    last_used_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "hint": self.hint,
            "created_at": format_timestamp(self.created_at),
            "last_used_at": _optional_timestamp(self.last_used_at),
        }


@dataclass(frozen=True, slots=True)
class InviteRecord:
    id: int
    hint: str
    max_uses: int
    uses: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """An invite as admins see it: never its code, only the hint."""
        return {
            "id": self.id,
            "hint": self.hint,
            "max_uses": self.max_uses,
            "uses": self.uses,
            "created_at": format_timestamp(self.created_at),
            "expires_at": format_timestamp(self.expires_at),
            "revoked": self.revoked_at is not None,
        }


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    display_name: str
    display_key: str
    email: str | None
    password_hash: str | None
    role: str
    created_at: datetime


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ---- users ----

    async def insert_user(self, new: NewUser) -> Account:
        statement = insert(_users).values(
            username=new.username,
            display_name=new.display_name,
            display_key=new.display_key,
            email=new.email,
            password_hash=new.password_hash,
            role=new.role,
            disabled=False,
            created_at=new.created_at,
        )
        result = await self._session.execute(statement.returning(_users.c.id))
        return Account(
            id=result.scalar_one(),
            username=new.username,
            display_name=new.display_name,
            role=new.role,
        )

    async def user_by_username(self, username: str) -> UserRecord | None:
        row = (
            await self._session.execute(select(_users).where(_users.c.username == username))
        ).first()
        return _user_record(row) if row is not None else None

    async def enabled_ids_by_username(self, usernames: Iterable[str]) -> dict[str, int]:
        """username -> id of the enabled accounts among these usernames, in one query."""
        wanted = sorted(set(usernames))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(_users.c.username, _users.c.id).where(
                _users.c.username.in_(wanted), _users.c.disabled.is_(False)
            )
        )
        return {username: int(user_id) for username, user_id in rows}

    async def user_by_id(self, user_id: int) -> UserRecord | None:
        row = (await self._session.execute(select(_users).where(_users.c.id == user_id))).first()
        return _user_record(row) if row is not None else None

    async def list_users(self) -> list[UserRecord]:
        rows = await self._session.execute(select(_users).order_by(_users.c.id))
        return [_user_record(row) for row in rows]

    async def has_admin(self) -> bool:
        found = await self._session.scalar(
            select(_users.c.id).where(_users.c.role == "admin").limit(1)
        )
        return found is not None

    async def names_taken(self, keys: Iterable[str], *, except_user: int | None = None) -> set[str]:
        """Which of these name keys an account holds, as username or display name."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        statement = select(_users.c.username, _users.c.display_key).where(
            or_(_users.c.username.in_(wanted), _users.c.display_key.in_(wanted))
        )
        if except_user is not None:
            statement = statement.where(_users.c.id != except_user)
        taken: set[str] = set()
        for username, display_key in await self._session.execute(statement):
            taken.update(key for key in (username, display_key) if key in wanted)
        return taken

    async def update_user(self, user_id: int, **values: Any) -> bool:
        result = await self._session.execute(
            update(_users).where(_users.c.id == user_id).values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ---- sessions ----

    async def insert_session(
        self, *, user_id: int, digest: str, now: datetime, expires_at: datetime
    ) -> int:
        result = await self._session.execute(
            insert(_sessions)
            .values(
                user_id=user_id,
                token_hash=digest,
                created_at=now,
                last_used_at=now,
                expires_at=expires_at,
            )
            .returning(_sessions.c.id)
        )
        return int(result.scalar_one())

    async def session_by_digest(self, digest: str, *, now: datetime) -> SessionRecord | None:
        """The live session with this token hash, of an account that is not disabled."""
        statement = (
            select(
                _sessions.c.id, _sessions.c.last_used_at, _sessions.c.expires_at, *_ACCOUNT_COLUMNS
            )
            .join(_users, _users.c.id == _sessions.c.user_id)
            .where(
                _sessions.c.token_hash == digest,
                _sessions.c.expires_at > now,
                _users.c.disabled.is_(False),
            )
        )
        row = (await self._session.execute(statement)).first()
        if row is None:
            return None
        return SessionRecord(
            id=row[0], account=_account(row[3:]), last_used_at=row[1], expires_at=row[2]
        )

    async def extend_session(self, session_id: int, *, now: datetime, expires_at: datetime) -> None:
        await self._session.execute(
            update(_sessions)
            .where(_sessions.c.id == session_id)
            .values(last_used_at=now, expires_at=expires_at)
        )

    async def delete_session(self, session_id: int) -> int | None:
        """Delete one session; the user it belonged to, or None if it was gone already."""
        result = await self._session.execute(
            delete(_sessions).where(_sessions.c.id == session_id).returning(_sessions.c.user_id)
        )
        user_id = result.scalar_one_or_none()
        return int(user_id) if user_id is not None else None

    async def delete_sessions_of(self, user_id: int) -> list[int]:
        result = await self._session.execute(
            delete(_sessions).where(_sessions.c.user_id == user_id).returning(_sessions.c.id)
        )
        return [int(i) for i in result.scalars()]

    async def live_session_ids(self, ids: Sequence[int], *, now: datetime) -> set[int]:
        if not ids:
            return set()
        statement = (
            select(_sessions.c.id)
            .join(_users, _users.c.id == _sessions.c.user_id)
            .where(
                _sessions.c.id.in_(ids), _sessions.c.expires_at > now, _users.c.disabled.is_(False)
            )
        )
        return {int(i) for i in (await self._session.execute(statement)).scalars()}

    # ---- API tokens ----

    async def insert_token(
        self, *, user_id: int, name: str, digest: str, hint: str, now: datetime
    ) -> TokenRecord:
        result = await self._session.execute(
            insert(_tokens)
            .values(user_id=user_id, name=name, token_hash=digest, hint=hint, created_at=now)
            .returning(_tokens.c.id)
        )
        return TokenRecord(
            id=int(result.scalar_one()), name=name, hint=hint, created_at=now, last_used_at=None
        )

    async def token_by_digest(self, digest: str) -> tuple[int, Account, datetime | None] | None:
        """(token id, its account, when it was last used) for a live token of an enabled user."""
        statement = (
            select(_tokens.c.id, _tokens.c.last_used_at, *_ACCOUNT_COLUMNS)
            .join(_users, _users.c.id == _tokens.c.user_id)
            .where(
                _tokens.c.token_hash == digest,
                _tokens.c.revoked_at.is_(None),
                _users.c.disabled.is_(False),
            )
        )
        row = (await self._session.execute(statement)).first()
        if row is None:
            return None
        return int(row[0]), _account(row[2:]), row[1]

    async def touch_tokens(self, used: Mapping[int, datetime]) -> None:
        """Set each token's last use (token id -> when), in one statement executed for all."""
        if not used:
            return
        statement = (
            update(_tokens)
            .where(_tokens.c.id == bindparam("token_id"))
            .values(last_used_at=bindparam("used_at"))
        )
        rows = [{"token_id": token_id, "used_at": at} for token_id, at in sorted(used.items())]
        await self._session.execute(statement, rows)

    async def tokens_of(self, user_id: int) -> list[TokenRecord]:
        statement = (
            select(
                _tokens.c.id,
                _tokens.c.name,
                _tokens.c.hint,
                _tokens.c.created_at,
                _tokens.c.last_used_at,
            )
            .where(_tokens.c.user_id == user_id, _tokens.c.revoked_at.is_(None))
            .order_by(_tokens.c.id)
        )
        return [
            TokenRecord(id=row[0], name=row[1], hint=row[2], created_at=row[3], last_used_at=row[4])
            for row in await self._session.execute(statement)
        ]

    async def revoke_token(self, token_id: int, *, user_id: int, now: datetime) -> bool:
        result = await self._session.execute(
            update(_tokens)
            .where(
                _tokens.c.id == token_id,
                _tokens.c.user_id == user_id,
                _tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_tokens_of(self, user_id: int, *, now: datetime) -> list[int]:
        result = await self._session.execute(
            update(_tokens)
            .where(_tokens.c.user_id == user_id, _tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(_tokens.c.id)
        )
        return [int(i) for i in result.scalars()]

    async def live_token_ids(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        statement = (
            select(_tokens.c.id)
            .join(_users, _users.c.id == _tokens.c.user_id)
            .where(
                _tokens.c.id.in_(ids), _tokens.c.revoked_at.is_(None), _users.c.disabled.is_(False)
            )
        )
        return {int(i) for i in (await self._session.execute(statement)).scalars()}

    async def enabled_user_ids(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        statement = select(_users.c.id).where(_users.c.id.in_(ids), _users.c.disabled.is_(False))
        return {int(i) for i in (await self._session.execute(statement)).scalars()}

    # ---- invites ----

    async def insert_invite(
        self,
        *,
        digest: str,
        hint: str,
        max_uses: int,
        created_by: int | None,
        now: datetime,
        expires_at: datetime,
    ) -> InviteRecord:
        result = await self._session.execute(
            insert(_invites)
            .values(
                code_hash=digest,
                hint=hint,
                max_uses=max_uses,
                uses=0,
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
            )
            .returning(_invites.c.id)
        )
        return InviteRecord(
            id=int(result.scalar_one()),
            hint=hint,
            max_uses=max_uses,
            uses=0,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )

    async def use_invite(self, digest: str, *, now: datetime) -> bool:
        """Spend one use of a live invite; False when there is no such usable invite."""
        result = await self._session.execute(
            update(_invites)
            .where(
                _invites.c.code_hash == digest,
                _invites.c.uses < _invites.c.max_uses,
                _invites.c.expires_at > now,
                _invites.c.revoked_at.is_(None),
            )
            .values(uses=_invites.c.uses + 1)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list_invites(self) -> list[InviteRecord]:
        rows = await self._session.execute(select(_invites).order_by(_invites.c.id))
        return [
            InviteRecord(
                id=row.id,
                hint=row.hint,
                max_uses=row.max_uses,
                uses=row.uses,
                created_at=row.created_at,
                expires_at=row.expires_at,
                revoked_at=row.revoked_at,
            )
            for row in rows
        ]

    async def revoke_invite(self, invite_id: int, *, now: datetime) -> bool:
        result = await self._session.execute(
            update(_invites)
            .where(_invites.c.id == invite_id, _invites.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ---- external identities ----

    async def user_id_for_identity(self, issuer: str, subject: str) -> int | None:
        found = await self._session.scalar(
            select(_identities.c.user_id).where(
                _identities.c.issuer == issuer, _identities.c.subject == subject
            )
        )
        return int(found) if found is not None else None

    async def link_identity(
        self, *, user_id: int, issuer: str, subject: str, now: datetime
    ) -> None:
        await self._session.execute(
            insert(_identities).values(
                user_id=user_id, issuer=issuer, subject=subject, created_at=now
            )
        )

    async def count_users(self) -> int:
        return int(await self._session.scalar(select(func.count()).select_from(_users)) or 0)


def _account(row: Sequence[Any]) -> Account:
    return Account(id=int(row[0]), username=row[1], display_name=row[2], role=row[3])


def _user_record(row: Any) -> UserRecord:
    return UserRecord(
        account=Account(
            id=int(row.id), username=row.username, display_name=row.display_name, role=row.role
        ),
        email=row.email,
        password_hash=row.password_hash,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


def _optional_timestamp(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None
