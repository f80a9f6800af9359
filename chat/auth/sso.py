"""Single sign-on: start an OpenID Connect sign-on, finish it, and sign the browser in.

Where `state`, `nonce` and the PKCE `code_verifier` wait while the browser is at the provider:
in the database (table `oidc_logins`, one row per sign-on), keyed by the SHA-256 of the state,
and bound to the browser that started it by the SHA-256 of a random value in an HttpOnly,
SameSite=Lax cookie of that browser (`__Host-` prefixed over https). Why not a signed cookie
holding them all: this server has no per-deployment secret to sign with, and inventing one
means storing it somewhere every node can read, which is the database again. A row works on
every node, is single-use by construction (it is deleted as it is read, so of two requests
with the same state exactly one gets it), and expires: a row older than ten minutes is refused,
and expired rows are deleted whenever a sign-on starts. The cookie binding is what stops login
CSRF: a callback URL made in an attacker's browser (with the attacker's code and state) does
nothing in a victim's browser, which lacks the attacker's cookie. The cookie is reused by later
sign-ins of the same browser and left to expire, so two tabs that each start one can both finish.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth import secrets
from chat.auth.oidc import OidcClient, OidcError, ProviderUnavailable
from chat.auth.pending_logins import PendingLogin, PendingLoginRepository
from chat.auth.principal import Principal, SignedIn
from chat.auth.service import AccountService, NewSession
from chat.db import WRITE_EXECUTION_OPTIONS
from chat.errors import ClientError
from chat.models import MAX_URL_CHARS
from chat.security import safe_next_path

logger = logging.getLogger(__name__)

LOGIN_LIFETIME = timedelta(minutes=10)
# What a browser cookie made by `new_secret` looks like; anything else is replaced.
_BROWSER_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
# An OAuth error code is shown to the person only when it looks like one (RFC 6749 4.1.2.1).
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


class SignOnRefused(Exception):
    """A sign-on that cannot complete. `message` is for the person (no internals), `detail`
    for the log (no secrets)."""

    def __init__(self, code: str, message: str, *, status: int = 400, detail: str = "") -> None:
        super().__init__(f"{code}: {detail or message}")
        self.code = code
        self.message = message
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class StartedSignOn:
    authorization_url: str
    browser: str  # the value of the browser's pending-sign-on cookie


@dataclass(frozen=True, slots=True)
class FinishedSignOn:
    session: NewSession
    next_path: str


class SingleSignOn:
    def __init__(
        self,
        *,
        client: OidcClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        accounts: AccountService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._sessionmaker = sessionmaker
        self._accounts = accounts
        self._clock = clock

    @property
    def issuer(self) -> str:
        return self._client.issuer

    async def aclose(self) -> None:
        await self._client.aclose()

    async def begin(
        self, *, next_path: str | None, redirect_uri: str, browser: str | None
    ) -> StartedSignOn:
        """Remember a new sign-on and say where to send the browser.

        `browser` is the browser's cookie from an earlier sign-on, kept so that two tabs that
        both start one can both finish; a missing or malformed one is replaced.
        """
        if len(redirect_uri) > MAX_URL_CHARS:
            raise SignOnRefused("invalid_request", "This address is too long to sign in from.")
        target = safe_next_path(next_path)
        if len(target) > MAX_URL_CHARS:
            target = "/"
        if browser is None or not _BROWSER_SECRET.fullmatch(browser):
            browser = secrets.new_secret().value
        try:
            request = await self._client.authorization_request(redirect_uri)
        except OidcError as error:
            # Nothing the person sent can be wrong yet: the provider is down or misconfigured.
            raise _provider_failure(error, status=502) from None
        now = self._clock()
        async with self._writing() as session:
            repository = PendingLoginRepository(session)
            await repository.delete_older_than(now - LOGIN_LIFETIME)
            await repository.insert(
                state_hash=secrets.digest(request.state),
                login=PendingLogin(
                    browser_hash=secrets.digest(browser),
                    nonce=request.nonce,
                    code_verifier=request.code_verifier,
                    redirect_uri=redirect_uri,
                    next_path=target,
                    created_at=now,
                ),
            )
        return StartedSignOn(authorization_url=request.url, browser=browser)

    async def finish(
        self, *, params: Mapping[str, str], browser: str | None, previous: Principal
    ) -> FinishedSignOn:
        """Check the provider's answer against the sign-on this browser started, and sign the
        browser in (a new session; one it had before ends). SignOnRefused says why not."""
        login = await self._take(params.get("state"), browser)
        answered = params.get("error")
        if answered is not None:
            shown = answered if _ERROR_CODE.fullmatch(answered) else "error"
            raise SignOnRefused(
                "provider_refused",
                f"The sign-in provider did not sign you in ({shown}).",
                detail=f"the provider answered {shown}",
            )
        code = params.get("code")
        if not code:
            raise SignOnRefused("missing_code", "The sign-in provider sent no authorization code.")
        try:
            await self._client.check_response_issuer(params.get("iss"))
            identity = await self._client.identity(
                code=code,
                redirect_uri=login.redirect_uri,
                code_verifier=login.code_verifier,
                nonce=login.nonce,
            )
        except OidcError as error:
            raise _provider_failure(error) from None
        try:
            account = await self._accounts.account_for_identity(
                issuer=identity.issuer,
                subject=identity.subject,
                username_hint=identity.preferred_username,
                display_name=identity.name,
                # An unverified address may be anyone's: it is not even kept.
                verified_email=identity.email if identity.email_verified else None,
            )
        except ClientError as refused:
            raise SignOnRefused(
                refused.code, f"You cannot sign in: {refused.detail}.", status=refused.status
            ) from None
        if isinstance(previous, SignedIn):
            await self._accounts.end_session(previous)
        session = await self._accounts.start_session(account)
        return FinishedSignOn(session=session, next_path=login.next_path)

    async def _take(self, state: str | None, browser: str | None) -> PendingLogin:
        """The pending sign-on with this state, used up; refused unless it is this browser's
        and young enough."""
        if not state:
            raise SignOnRefused(
                "missing_state", "The answer from the sign-in provider has no state."
            )
        async with self._writing() as session:
            login = await PendingLoginRepository(session).take(secrets.digest(state))
        if login is None:
            raise SignOnRefused(
                "unknown_state",
                "This sign-in is unknown or was completed already.",
                detail="no pending sign-on has this state (forged, or used before)",
            )
        if self._clock() - login.created_at > LOGIN_LIFETIME:
            raise SignOnRefused("expired_state", "This sign-in took too long and has expired.")
        if browser is None or not hmac.compare_digest(secrets.digest(browser), login.browser_hash):
            raise SignOnRefused(
                "other_browser",
                "This sign-in was started in another browser, or this browser lost its cookie.",
            )
        return login

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as session, session.begin():
            await session.connection(execution_options=WRITE_EXECUTION_OPTIONS)
            yield session


def _provider_failure(error: OidcError, *, status: int = 400) -> SignOnRefused:
    if isinstance(error, ProviderUnavailable):
        return SignOnRefused(
            "provider_unavailable",
            "The sign-in provider cannot be reached right now. Try again in a moment.",
            status=502,
            detail=str(error),
        )
    return SignOnRefused(
        "invalid_provider_response",
        "The sign-in provider's answer could not be verified.",
        status=status,
        detail=str(error),
    )
