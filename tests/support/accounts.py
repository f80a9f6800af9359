"""An AccountService on a test database, its revocations going nowhere."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth.passwords import PasswordHashing
from chat.auth.principal import Revocation
from chat.auth.service import AccountService


async def ignore(_revocation: Revocation) -> None:
    return None


def account_service(sessionmaker: async_sessionmaker[AsyncSession]) -> AccountService:
    return AccountService(
        sessionmaker=sessionmaker,
        hashing=PasswordHashing(),
        session_days=30,
        registration="open",
        on_revoked=ignore,
    )
