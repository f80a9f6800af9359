"""The authentication layer: the one place that reads credentials.

For every HTTP request and WebSocket handshake it decides who is speaking and puts it on the
scope (`scope["user"]`: SignedIn or GUEST; `scope["auth"]`), from, in this order:

1. `CHAT_PROXY_USER_HEADER`, honoured only from a connecting address in `CHAT_TRUSTED_PROXIES`
   (anything else sending it is ignored, and logged once per address; see chat.forwarded for
   why "connecting"); when honoured it decides alone;
2. `Authorization: Bearer <personal API token>` (a bad one is refused with 401 at once);
3. the session cookie (a bad or expired one is cleared, and the request goes on as a guest).

Nothing below the routes reads cookies or headers. A session whose expiry moved forward gets its
cookie sent again, so an active browser never hits the expiry.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from starlette.authentication import AuthCredentials
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat.auth.principal import GUEST, Credential, Principal, SignedIn
from chat.auth.service import AccountService
from chat.forwarded import peer_address
from chat.settings import Settings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "chat_session"
# Over https the cookie is `__Host-` prefixed: the browser then insists on Secure, Path=/ and no
# Domain, so no sibling subdomain can plant or read it.
SECURE_SESSION_COOKIE = "__Host-chat_session"
# Routes that check a credential of their own (the metrics scrape token).
OWN_BEARER_PATHS = ("/metrics",)
_MAX_WARNED_ADDRESSES = 1024


@dataclass(slots=True)
class _Outcome:
    principal: Principal
    set_cookie: str | None = None  # a Set-Cookie header value to add to the response
    refused: JSONResponse | None = None


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Per app, not per module: addresses that sent the proxy header without being trusted.
        self._warned: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.get("state") or {}
        accounts: AccountService | None = state.get("accounts")
        settings: Settings | None = state.get("settings")
        if accounts is None or settings is None:  # not started (no lifespan): nobody signed in
            scope["user"], scope["auth"] = GUEST, AuthCredentials()
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        outcome = await self._authenticate(connection, accounts, settings)
        principal = outcome.principal
        scope["user"] = principal
        scope["auth"] = AuthCredentials(["authenticated"] if principal.is_authenticated else [])
        if outcome.refused is not None:
            if scope["type"] == "http":
                await outcome.refused(scope, receive, send)
                return
            scope["auth_refused"] = outcome.refused  # the socket route denies the handshake
        if outcome.set_cookie is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = outcome.set_cookie

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # A route that signs in or out sets the cookie itself and wins.
                if not any(
                    value.startswith((f"{SESSION_COOKIE}=", f"{SECURE_SESSION_COOKIE}="))
                    for value in headers.getlist("set-cookie")
                ):
                    headers.append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _authenticate(
        self, connection: HTTPConnection, accounts: AccountService, settings: Settings
    ) -> _Outcome:
        proxied = await self._from_proxy(connection, accounts, settings)
        if proxied is not None:
            return _Outcome(proxied)
        authorization = connection.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        socket = connection.scope["type"] == "websocket"
        if scheme.lower() == "bearer" and connection.url.path not in OWN_BEARER_PATHS:
            check = accounts.check_socket_token if socket else accounts.check_token
            principal = await check(credentials.strip())
            if principal is None:
                return _Outcome(GUEST, refused=_invalid_token())
            return _Outcome(principal)
        token = connection.cookies.get(SECURE_SESSION_COOKIE) or connection.cookies.get(
            SESSION_COOKIE
        )
        if not token:
            return _Outcome(GUEST)
        if socket:  # no cookie to refresh on a socket
            signed_in = await accounts.check_socket_session(token)
            return _Outcome(signed_in if signed_in is not None else GUEST)
        checked = await accounts.check_session(token)
        if checked is None:
            # Signed out elsewhere, expired or forged: forget it, carry on as a guest.
            return _Outcome(GUEST, set_cookie=clear_session_cookie(connection))
        if checked.refreshed_until is not None:
            cookie = session_cookie(connection, token, expires_at=checked.refreshed_until)
            return _Outcome(checked.principal, set_cookie=cookie)
        return _Outcome(checked.principal)

    async def _from_proxy(
        self, connection: HTTPConnection, accounts: AccountService, settings: Settings
    ) -> Principal | None:
        """Who a trusted proxy says this is (GUEST for a disabled or malformed name), or None
        when there is no proxy header to honour. A trusted proxy's word is final: a request it
        vouches for is never signed in by a cookie or token instead."""
        header = settings.proxy_user_header
        if not header:
            return None
        username = connection.headers.get(header, "").strip()
        if not username:  # some proxies send it empty for requests they let through unsigned
            return None
        # The connecting address, not a forwarded one: only the proxy itself is trusted.
        address = peer_address(connection.scope)
        if not _trusted(address, settings.trusted_proxies):
            self._warn_untrusted(address, header)
            return None
        account = await accounts.account_from_proxy(username)
        return SignedIn(account, Credential("proxy", None)) if account is not None else GUEST

    def _warn_untrusted(self, address: str, header: str) -> None:
        if address in self._warned:
            return
        self._warned[address] = None
        if len(self._warned) > _MAX_WARNED_ADDRESSES:
            self._warned.popitem(last=False)
        logger.warning(
            "ignoring %s from %s: not in CHAT_TRUSTED_PROXIES",
            header,
            address or "-",
            extra={"client": address, "code": "untrusted_proxy_header"},
        )


def _trusted(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def _invalid_token() -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_token", "detail": "the API token is unknown, revoked or disabled"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _is_https(connection: HTTPConnection) -> bool:
    return connection.url.scheme in ("https", "wss")


def session_cookie(connection: HTTPConnection, token: str, *, expires_at: datetime) -> str:
    """The Set-Cookie value for a session: HttpOnly, SameSite=Lax, Secure (+ __Host-) on https."""
    max_age = max(0, int((expires_at - datetime.now(expires_at.tzinfo)).total_seconds()))
    return _cookie(connection, token, max_age=max_age)


def clear_session_cookie(connection: HTTPConnection) -> str:
    return _cookie(connection, "", max_age=0)


def _cookie(connection: HTTPConnection, value: str, *, max_age: int) -> str:
    secure = _is_https(connection)
    name = SECURE_SESSION_COOKIE if secure else SESSION_COOKIE
    attributes = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)
