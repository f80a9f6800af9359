"""Accounts for single sign-on identities, and pending sign-ins, on SQLite and PostgreSQL.

AccountService.account_for_identity finds an account by (issuer, sub) and by nothing else;
PendingLoginRepository.take hands a pending sign-in to exactly one caller.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth.pending_logins import PendingLogin, PendingLoginRepository
from chat.auth.principal import Account
from chat.auth.service import AccountService
from chat.errors import ClientError
from tests.support.accounts import account_service
from tests.support.postgres import BOTH_ENGINES

pytestmark = [pytest.mark.anyio, BOTH_ENGINES]

ISSUER = "https://id.example"


@pytest.fixture
def accounts(sessionmaker: async_sessionmaker[AsyncSession]) -> AccountService:
    return account_service(sessionmaker)


async def identity(
    accounts: AccountService,
    subject: str,
    username: str | None = "ada",
    name: str | None = "Ada Lovelace",
    *,
    issuer: str = ISSUER,
    email: str | None = None,
) -> Account:
    return await accounts.account_for_identity(
        issuer=issuer,
        subject=subject,
        username_hint=username,
        display_name=name,
        verified_email=email,
    )


async def test_an_identity_finds_the_account_it_made(accounts: AccountService) -> None:
    first = await identity(accounts, "u-1", email="ada@example.org")
    assert (first.username, first.display_name, first.role) == ("ada", "Ada Lovelace", "member")
    # Renamed at the provider: still the same account, names unchanged.
    assert await identity(accounts, "u-1", "countess", "Countess") == first
    record = await accounts.user("ada")
    assert record is not None
    assert record.email == "ada@example.org" and record.password_hash is None


async def test_names_and_emails_never_link(accounts: AccountService) -> None:
    local = await accounts.add_user(username="ada", password=None, display_name="Ada Lovelace")
    first = await identity(accounts, "u-1", email="ada@example.org")
    second = await identity(accounts, "u-2", email="ada@example.org")
    other_issuer = await identity(accounts, "u-1", issuer="https://other.example")
    ids = {local.id, first.id, second.id, other_issuer.id}
    assert len(ids) == 4
    # Taken names get numbers; a taken display name gives way to the username.
    assert [(a.username, a.display_name) for a in (first, second, other_issuer)] == [
        ("ada-2", "ada-2"),
        ("ada-3", "ada-3"),
        ("ada-4", "ada-4"),
    ]


async def test_reserved_and_odd_names_become_valid_free_ones(accounts: AccountService) -> None:
    assert (await identity(accounts, "u-1", "admin", "Admin")).username == "admin-2"
    assert (await identity(accounts, "u-2", None, "Zoë Ångström")).username == "zoe-angstrom"
    odd = await identity(accounts, "u-3", None, "\u200bhidden")  # invisible: not a display name
    assert (odd.username, odd.display_name) == ("hidden", "hidden")
    assert (await identity(accounts, "u-4", None, None)).username == "user"


async def test_a_disabled_account_is_refused(accounts: AccountService) -> None:
    account = await identity(accounts, "u-1")
    assert await accounts.set_disabled(account.id, True)
    with pytest.raises(ClientError) as refused:
        await identity(accounts, "u-1")
    assert (refused.value.code, refused.value.status) == ("account_disabled", 403)


async def test_concurrent_first_sign_ins_make_one_account(accounts: AccountService) -> None:
    made = await asyncio.gather(*(identity(accounts, "u-1") for _ in range(5)))
    assert len({account.id for account in made}) == 1
    assert [user.account.username for user in await accounts.users()] == ["ada"]


async def test_a_pending_sign_in_is_taken_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    login = PendingLogin(
        browser_hash="b" * 64,
        nonce="n",
        code_verifier="v" * 64,
        redirect_uri="https://chat.example/auth/oidc/callback",
        next_path="/",
        created_at=datetime.now(UTC),
    )
    async with sessionmaker() as session, session.begin():
        await PendingLoginRepository(session).insert(state_hash="s" * 64, login=login)

    async def take() -> PendingLogin | None:
        async with sessionmaker() as session, session.begin():
            return await PendingLoginRepository(session).take("s" * 64)

    taken = await asyncio.gather(*(take() for _ in range(4)))
    assert [t for t in taken if t is not None] == [login]
