"""Cross-site request forgery: a browser on another site must not change anything here.

Every state-changing request (POST, PUT, PATCH, DELETE) that carries cookies (so may be acting
on a signed-in browser's behalf) is refused with 403 when the browser says it came from another
site: `Sec-Fetch-Site: cross-site` or `same-site`, or (from a browser that sends no
Sec-Fetch-Site) an `Origin` that is not this server (as the Host header names it) or an entry of
CHAT_ALLOWED_ORIGINS. Programs without cookies (API tokens) are not affected. JSON endpoints also
need `Content-Type: application/json`, which a plain cross-site form cannot send; the HTML forms
carry a double-submit token as well (chat.forms).
"""

from __future__ import annotations

import logging

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from chat.security import origin_allowed

logger = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


class CrossSiteRequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if "cookie" in connection.headers and _cross_site(connection):
            address = connection.client.host if connection.client else "-"
            logger.warning(
                "refused a cross-site %s %s from %s",
                scope["method"],
                connection.url.path,
                address,
                extra={"client": address, "code": "cross_site_request"},
            )
            await _refusal(connection)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _cross_site(connection: HTTPConnection) -> bool:
    fetch_site = connection.headers.get("sec-fetch-site")
    if fetch_site is not None:
        # The browser's own word (no page can set this header), and the only one to go by when
        # it sends it: a page served under `Referrer-Policy: no-referrer` (an older copy of ours,
        # a cached one) makes a same-origin form post carry `Origin: null`.
        return fetch_site.lower() not in _ALLOWED_FETCH_SITES
    origin = connection.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-site request (browsers send Origin on those)
    settings = (connection.scope.get("state") or {}).get("settings")
    allowed = settings.allowed_origins if settings is not None else frozenset()
    return not origin_allowed(
        origin,
        host=connection.headers.get("host"),
        scheme=connection.url.scheme,
        allowed=allowed,
        allow_missing=True,
    )


def _refusal(connection: HTTPConnection) -> Response:
    detail = "this request came from another site; it was refused"
    if connection.url.path.startswith("/api/"):
        return JSONResponse({"error": "cross_site_request", "detail": detail}, status_code=403)
    return PlainTextResponse(f"Forbidden: {detail}.", status_code=403)
