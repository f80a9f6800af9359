"""PendingLoginRepository: the only code that queries oidc_logins, the sign-ons in flight.

It receives its session and never commits: chat.auth.sso owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from chat.models import OidcLogin

_logins = cast(Table, OidcLogin.__table__)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    browser_hash: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str
    created_at: datetime


class PendingLoginRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert(self, *, state_hash: str, login: PendingLogin) -> None:
        await self._session.execute(
            insert(_logins).values(
                state_hash=state_hash,
                browser_hash=login.browser_hash,
                nonce=login.nonce,
                code_verifier=login.code_verifier,
                redirect_uri=login.redirect_uri,
                next_path=login.next_path,
                created_at=login.created_at,
            )
        )

    async def take(self, state_hash: str) -> PendingLogin | None:
        """Delete the login with this state and return it: whoever comes back first gets it,
        and nobody gets it twice."""
        result = await self._session.execute(
            delete(_logins)
            .where(_logins.c.state_hash == state_hash)
            .returning(
                _logins.c.browser_hash,
                _logins.c.nonce,
                _logins.c.code_verifier,
                _logins.c.redirect_uri,
                _logins.c.next_path,
                _logins.c.created_at,
            )
        )
        row = result.first()
        if row is None:
            return None
        return PendingLogin(
            browser_hash=row[0],
            nonce=row[1],
            code_verifier=row[2],
            redirect_uri=row[3],
            next_path=row[4],
            created_at=row[5],
        )

    async def delete_older_than(self, cutoff: datetime) -> int:
        result = await self._session.execute(delete(_logins).where(_logins.c.created_at < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]
