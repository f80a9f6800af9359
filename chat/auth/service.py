"""AccountService: registration, sign-in, sessions, API tokens, invites and account admin.

It owns the transactions (short sessions of its own) and tells the rest of the server, through
`on_revoked`, which credentials stopped being valid, so sockets they opened close at once on
every node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from secrets import randbelow

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth import secrets
from chat.auth.names import (
    RESERVED_USERNAMES,
    name_key,
    numbered_username,
    parse_display_name,
    parse_new_username,
    parse_username,
    username_from_hint,
)
from chat.auth.passwords import PasswordHashing, check_password_rules
from chat.auth.principal import Account, Credential, Revocation, SignedIn
from chat.auth.recent_checks import RecentChecks
from chat.auth.repository import (
    AccountRepository,
    InviteRecord,
    NewUser,
    TokenRecord,
    UserRecord,
)
from chat.auth.token_use import TokenUse
from chat.db import WRITE_EXECUTION_OPTIONS, single_read
from chat.errors import ClientError
from chat.models import MAX_DISPLAY_NAME_CHARS, MAX_EMAIL_CHARS, MAX_TOKEN_NAME_CHARS

logger = logging.getLogger(__name__)

# A session's expiry moves forward at most this often (each move is a database write).
SESSION_REFRESH_EVERY = timedelta(hours=1)
# last_used_at of a token, likewise.
TOKEN_TOUCH_EVERY = timedelta(minutes=10)
# The PostgreSQL advisory lock that serializes registrations (the first-admin rule).
_REGISTRATION_LOCK_KEY = int.from_bytes(b"chatregi", "big") & 0x7FFF_FFFF_FFFF_FFFF
# A single sign-on name tries `ada`, `ada-2`, ... this many at a time, up to the second bound.
_NAMES_PER_QUERY = 20
_MAX_NUMBERED_NAMES = 1000

RevocationSink = Callable[[Revocation], Awaitable[None]]
AccountSink = Callable[[Account], Awaitable[None]]


def _username_candidates(base: str) -> Iterator[list[str]]:
    """`base`, `base-2`, `base-3`, ... in batches; after a thousand, random numbers, so nobody
    can keep a name's holders out by registering every number first."""
    for first in range(1, _MAX_NUMBERED_NAMES, _NAMES_PER_QUERY):
        yield [numbered_username(base, n) for n in range(first, first + _NAMES_PER_QUERY)]
    yield [
        numbered_username(base, _MAX_NUMBERED_NAMES + randbelow(10**9))
        for _ in range(_NAMES_PER_QUERY)
    ]


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # the cookie value; shown to the client once
    session_id: int
    expires_at: datetime
    account: Account


@dataclass(frozen=True, slots=True)
class SessionCheck:
    principal: SignedIn
    # Set when the expiry moved: the cookie must be sent again with the new lifetime.
    refreshed_until: datetime | None


@dataclass(frozen=True, slots=True)
class NewToken:
    token: str  # shown once
    record: TokenRecord


@dataclass(frozen=True, slots=True)
class NewInvite:
    code: str  # shown once
    record: InviteRecord


class AccountService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        hashing: PasswordHashing,
        session_days: int,
        registration: str,
        on_revoked: RevocationSink,
        on_created: AccountSink | None = None,
        recent_checks: RecentChecks | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._hashing = hashing
        self._session_lifetime = timedelta(days=session_days)
        self._registration = registration
        self._on_revoked = on_revoked
        # Told of every new account (it joins the default rooms).
        self._on_created = on_created
        self._clock = clock
        self._token_use = TokenUse(sessionmaker)
        self._recent = recent_checks if recent_checks is not None else RecentChecks()

    def start(self) -> None:
        """Begin writing down, every few seconds, which API tokens were used."""
        self._token_use.start()

    async def stop(self) -> None:
        await self._token_use.stop()

    # ---- registration and sign-in ----

    async def register(
        self,
        *,
        username: object,
        password: object,
        display_name: object = None,
        invite: object = None,
        from_loopback: bool = False,
    ) -> Account:
        """Create an account, or raise ClientError naming what is wrong.

        The first account on a server without an admin becomes admin when it registers from
        the server's own machine; everyone else is a member.
        """
        if self._registration == "closed":
            raise ClientError(
                "registration_closed", "this server does not take registrations", status=403
            )
        name = parse_new_username(username)
        display = parse_display_name(display_name, default=name)
        secret = check_password_rules(password)
        invite_digest = self._invite_digest(invite)
        password_hash = await self._hashing.hash(secret)
        async with self._writing() as session:
            repository = AccountRepository(session)
            await self._check_names_free(repository, name, display)
            if invite_digest is not None and not await repository.use_invite(
                invite_digest, now=self._clock()
            ):
                raise ClientError(
                    "invalid_invite", "that invite code is unknown, used up or expired", status=403
                )
            first_admin = from_loopback and not await repository.has_admin()
            account = await self._insert_user(
                repository,
                self._new_user(
                    name, display, password_hash, role="admin" if first_admin else "member"
                ),
            )
        logger.info(
            "registered %s%s", account.username, " as the first admin" if first_admin else ""
        )
        await self._created(account)
        return account

    async def _created(self, account: Account) -> None:
        if self._on_created is not None:
            await self._on_created(account)

    def _invite_digest(self, invite: object) -> str | None:
        if self._registration != "invite":
            return None
        if not isinstance(invite, str) or not invite.strip():
            raise ClientError(
                "invite_required", "registration needs an invite code on this server", status=403
            )
        return secrets.digest(invite.strip())

    async def _check_names_free(
        self, repository: AccountRepository, username: str, display: str
    ) -> None:
        wanted = {username, name_key(display)}
        if await repository.names_taken(wanted):
            raise ClientError(
                "name_taken",
                "that username or display name (or one that looks like it) is taken",
                status=409,
            )

    def _new_user(
        self, username: str, display_name: str, password_hash: str | None, *, role: str
    ) -> NewUser:
        return NewUser(
            username=username,
            display_name=display_name,
            display_key=name_key(display_name),
            email=None,
            password_hash=password_hash,
            role=role,
            created_at=self._clock(),
        )

    async def _insert_user(self, repository: AccountRepository, new: NewUser) -> Account:
        try:
            return await repository.insert_user(new)
        except IntegrityError:
            # Two registrations raced for one name: the unique index decided.
            raise ClientError("name_taken", "that username is taken", status=409) from None

    async def verify_password(self, *, username: object, password: object) -> Account | None:
        """The account when the password is right; None otherwise (whatever the reason, in
        about the same time)."""
        try:
            name = parse_username(username)
        except ClientError:
            name = None
        secret = password if isinstance(password, str) else ""
        record = None
        if name is not None:
            async with self._reading() as session:
                record = await AccountRepository(session).user_by_username(name)
        stored = record.password_hash if record is not None else None
        if not await self._hashing.verify(stored, secret[:1024]):
            return None
        assert record is not None  # verify() is False without a stored hash
        if record.disabled:
            return None
        if stored is not None and self._hashing.needs_rehash(stored):
            await self._store_password_hash(record.account.id, secret)
        return record.account

    async def _store_password_hash(self, user_id: int, password: str) -> None:
        password_hash = await self._hashing.hash(password)
        async with self._writing() as session:
            await AccountRepository(session).update_user(user_id, password_hash=password_hash)

    async def account_from_proxy(self, username: str) -> Account | None:
        """The account a trusted proxy vouches for, made on first sight (as Grafana's and
        Gitea's reverse-proxy sign-in do); None for a malformed name or a disabled account."""
        try:
            name = parse_username(username)
        except ClientError:
            logger.warning("the trusted proxy sent an invalid username; treating as a guest")
            return None
        async with self._reading() as session:
            record = await AccountRepository(session).user_by_username(name)
        if record is not None:
            return None if record.disabled else record.account
        try:
            return await self.add_user(username=name, password=None)
        except ClientError:
            # Raced with another request for the same new name (or the name is reserved).
            async with self._reading() as session:
                record = await AccountRepository(session).user_by_username(name)
            return record.account if record is not None and not record.disabled else None

    async def account_for_identity(
        self,
        *,
        issuer: str,
        subject: str,
        username_hint: str | None,
        display_name: str | None,
        verified_email: str | None,
    ) -> Account:
        """The account linked to (issuer, subject) at an OpenID provider, made and linked on
        first sight; ClientError `account_disabled` (403) for a disabled one.

        Only (issuer, subject) ever finds an account: a new identity always gets a new account,
        whatever its name or email, so nobody takes over an account by naming themselves after
        it at a provider. The hints only choose the new account's names (see `_free_names`).
        """
        async with self._reading() as session:
            record = await self._linked_user(AccountRepository(session), issuer, subject)
        if record is None:
            async with self._writing() as session:
                repository = AccountRepository(session)
                # Again under the write lock: another node may have linked it meanwhile.
                record = await self._linked_user(repository, issuer, subject)
                if record is None:
                    username, display = await self._free_names(
                        repository, username_hint, display_name
                    )
                    email = verified_email if len(verified_email or "") <= MAX_EMAIL_CHARS else None
                    new = dataclasses.replace(
                        self._new_user(username, display, None, role="member"), email=email
                    )
                    created = await self._insert_user(repository, new)
                    await repository.link_identity(
                        user_id=created.id, issuer=issuer, subject=subject, now=self._clock()
                    )
            if record is None:
                logger.info("registered %s through single sign-on", created.username)
                await self._created(created)
                return created
        if record.disabled:
            raise ClientError("account_disabled", "this account is disabled", status=403)
        return record.account

    @staticmethod
    async def _linked_user(
        repository: AccountRepository, issuer: str, subject: str
    ) -> UserRecord | None:
        user_id = await repository.user_id_for_identity(issuer, subject)
        return await repository.user_by_id(user_id) if user_id is not None else None

    @staticmethod
    async def _free_names(
        repository: AccountRepository, username_hint: str | None, display_name: str | None
    ) -> tuple[str, str]:
        """A free username from the hint, else the display name (`ada`, else `ada-2`, `ada-3`,
        ...), and the display name if it is well-formed and nobody's name looks like it, else
        the username."""
        username = None
        for candidates in _username_candidates(username_from_hint(username_hint or display_name)):
            allowed = [name for name in candidates if name not in RESERVED_USERNAMES]
            taken = await repository.names_taken(allowed)
            username = next((name for name in allowed if name not in taken), None)
            if username is not None:
                break
        if username is None:
            raise ClientError("name_taken", "no free username is left for this name", status=409)
        try:
            display = parse_display_name(
                (display_name or "")[:MAX_DISPLAY_NAME_CHARS], default=username
            )
        except ClientError:
            return username, username
        if display != username and await repository.names_taken([name_key(display)]):
            return username, username
        return username, display

    # ---- sessions ----

    async def start_session(self, account: Account) -> NewSession:
        """A new session (a new id on every sign-in: no fixation)."""
        secret = secrets.new_secret(secrets.SESSION_PREFIX)
        now = self._clock()
        expires_at = now + self._session_lifetime
        async with self._writing() as session:
            repository = AccountRepository(session)
            session_id = await repository.insert_session(
                user_id=account.id, digest=secret.digest, now=now, expires_at=expires_at
            )
            await repository.update_user(account.id, last_seen_at=now)
        return NewSession(
            token=secret.value, session_id=session_id, expires_at=expires_at, account=account
        )

    async def check_session(self, token: str) -> SessionCheck | None:
        now = self._clock()
        async with single_read(self._sessionmaker) as session:
            record = await AccountRepository(session).session_by_digest(
                secrets.digest(token), now=now
            )
        if record is None:
            return None
        principal = SignedIn(record.account, Credential("session", record.id))
        if now - record.last_used_at < SESSION_REFRESH_EVERY:
            return SessionCheck(principal, refreshed_until=None)
        expires_at = now + self._session_lifetime
        async with self._writing() as session:
            repository = AccountRepository(session)
            await repository.extend_session(record.id, now=now, expires_at=expires_at)
            await repository.update_user(record.account.id, last_seen_at=now)
        return SessionCheck(principal, refreshed_until=expires_at)

    async def check_socket_session(self, token: str) -> SignedIn | None:
        """check_session for a WebSocket handshake: a check made here seconds ago will do
        (RecentChecks says why that is safe for a socket)."""

        async def check() -> SignedIn | None:
            checked = await self.check_session(token)
            return checked.principal if checked is not None else None

        return await self._recently_checked("session:" + secrets.digest(token), check)

    async def end_session(self, principal: SignedIn) -> None:
        """Sign out: this session ends now, on every node."""
        if principal.credential.kind != "session" or principal.credential.id is None:
            return
        async with self._writing() as session:
            user_id = await AccountRepository(session).delete_session(principal.credential.id)
        if user_id is not None:
            await self._revoke(Revocation(user_id=user_id, session_ids=(principal.credential.id,)))

    async def end_all_sessions(self, user_id: int) -> int:
        """Sign out everywhere: every session of the user ends now. Tokens stay."""
        async with self._writing() as session:
            ended = await AccountRepository(session).delete_sessions_of(user_id)
        if ended:
            await self._revoke(Revocation(user_id=user_id, session_ids=tuple(ended)))
        return len(ended)

    # ---- API tokens ----

    async def create_token(self, account: Account, name: object) -> NewToken:
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_TOKEN_NAME_CHARS:
            raise ClientError(
                "invalid_name", f"a token needs a name of 1 to {MAX_TOKEN_NAME_CHARS} characters"
            )
        secret = secrets.new_secret(secrets.TOKEN_PREFIX)
        async with self._writing() as session:
            record = await AccountRepository(session).insert_token(
                user_id=account.id,
                name=name.strip(),
                digest=secret.digest,
                hint=secret.hint,
                now=self._clock(),
            )
        return NewToken(token=secret.value, record=record)

    async def check_token(self, token: str) -> SignedIn | None:
        now = self._clock()
        async with single_read(self._sessionmaker) as session:
            found = await AccountRepository(session).token_by_digest(secrets.digest(token))
        if found is None:
            return None
        token_id, account, last_used_at = found
        if last_used_at is None or now - last_used_at >= TOKEN_TOUCH_EVERY:
            self._token_use.used(token_id, now)  # written within seconds, with others
        return SignedIn(account, Credential("token", token_id))

    async def check_socket_token(self, token: str) -> SignedIn | None:
        """check_token for a WebSocket handshake, like check_socket_session."""
        return await self._recently_checked(
            "token:" + secrets.digest(token), lambda: self.check_token(token)
        )

    async def _recently_checked(
        self, key: str, check: Callable[[], Awaitable[SignedIn | None]]
    ) -> SignedIn | None:
        principal = self._recent.get(key)
        if principal is not None:
            return principal
        started = self._recent.started()
        principal = await check()
        if principal is not None:
            self._recent.keep(key, principal, started)
        return principal

    async def _revoke(self, revocation: Revocation) -> None:
        """This node forgets the credentials at once; every node closes their sockets."""
        self._recent.forget(revocation)
        await self._on_revoked(revocation)

    async def tokens(self, account: Account) -> list[TokenRecord]:
        async with self._reading() as session:
            records = await AccountRepository(session).tokens_of(account.id)
        # A use this node has not written yet is already news to the person looking.
        return [self._token_use.latest(record) for record in records]

    async def revoke_token(self, account: Account, token_id: int) -> bool:
        async with self._writing() as session:
            revoked = await AccountRepository(session).revoke_token(
                token_id, user_id=account.id, now=self._clock()
            )
        if revoked:
            await self._revoke(Revocation(user_id=account.id, token_ids=(token_id,)))
        return revoked

    # ---- invites ----

    async def create_invite(
        self, *, created_by: int | None, max_uses: int, valid_for: timedelta
    ) -> NewInvite:
        if not 1 <= max_uses <= 10_000:
            raise ClientError("invalid_uses", "an invite has 1 to 10000 uses")
        if not timedelta(minutes=1) <= valid_for <= timedelta(days=365):
            raise ClientError("invalid_expiry", "an invite lasts from 1 minute to 365 days")
        secret = secrets.new_secret(secrets.INVITE_PREFIX)
        now = self._clock()
        async with self._writing() as session:
            record = await AccountRepository(session).insert_invite(
                digest=secret.digest,
                hint=secret.hint,
                max_uses=max_uses,
                created_by=created_by,
                now=now,
                expires_at=now + valid_for,
            )
        return NewInvite(code=secret.value, record=record)

    async def invites(self) -> list[InviteRecord]:
        async with self._reading() as session:
            return await AccountRepository(session).list_invites()

    async def revoke_invite(self, invite_id: int) -> bool:
        async with self._writing() as session:
            return await AccountRepository(session).revoke_invite(invite_id, now=self._clock())

    # ---- administration ----

    async def users(self) -> list[UserRecord]:
        async with self._reading() as session:
            return await AccountRepository(session).list_users()

    async def user(self, username: str) -> UserRecord | None:
        async with self._reading() as session:
            return await AccountRepository(session).user_by_username(username)

    async def add_user(
        self,
        *,
        username: object,
        password: object | None,
        display_name: object = None,
        role: str = "member",
    ) -> Account:
        """An account made by an operator (the CLI): no registration mode, no invite."""
        name = parse_new_username(username)
        display = parse_display_name(display_name, default=name)
        password_hash = (
            await self._hashing.hash(check_password_rules(password))
            if password is not None
            else None
        )
        async with self._writing() as session:
            repository = AccountRepository(session)
            await self._check_names_free(repository, name, display)
            account = await self._insert_user(
                repository, self._new_user(name, display, password_hash, role=role)
            )
        await self._created(account)
        return account

    async def set_disabled(self, user_id: int, disabled: bool) -> bool:
        """Disable (every session ends, every token stops working, sockets close) or enable."""
        async with self._writing() as session:
            repository = AccountRepository(session)
            changed = await repository.update_user(user_id, disabled=disabled)
            if changed and disabled:
                await repository.delete_sessions_of(user_id)
        if changed and disabled:
            await self._revoke(Revocation(user_id=user_id, whole_user=True))
        return changed

    async def set_role(self, user_id: int, role: str) -> bool:
        async with self._writing() as session:
            return await AccountRepository(session).update_user(user_id, role=role)

    async def set_password(self, user_id: int, password: object) -> None:
        """A new password ends every session of the user (a leaked one is dead at once)."""
        password_hash = await self._hashing.hash(check_password_rules(password))
        async with self._writing() as session:
            repository = AccountRepository(session)
            await repository.update_user(user_id, password_hash=password_hash)
            ended = await repository.delete_sessions_of(user_id)
        if ended:
            await self._revoke(Revocation(user_id=user_id, session_ids=tuple(ended)))

    async def still_valid(
        self, *, session_ids: Sequence[int], token_ids: Sequence[int], user_ids: Sequence[int]
    ) -> tuple[set[int], set[int], set[int]]:
        """Which of these sessions, tokens and (proxy-signed-in) users are still good."""
        now = self._clock()
        async with self._reading() as session:
            repository = AccountRepository(session)
            return (
                await repository.live_session_ids(session_ids, now=now),
                await repository.live_token_ids(token_ids),
                await repository.enabled_user_ids(user_ids),
            )

    # ---- transactions ----

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as session, session.begin():
            connection = await session.connection(execution_options=WRITE_EXECUTION_OPTIONS)
            if connection.dialect.name == "postgresql":
                # Serializes account writes across nodes, so "is there an admin yet" and "is
                # this name free" are answered and acted on atomically.
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REGISTRATION_LOCK_KEY}
                )
            yield session

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as session:
            yield session
