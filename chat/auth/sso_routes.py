"""`/auth/oidc/login` and `/auth/oidc/callback`: single sign-on in the browser (chat.auth.sso).

Both answer 404 when CHAT_OIDC_ISSUER is not set. A refused sign-on is a small HTML page that
says what happened and links back to /login, and one log line; never a traceback.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from chat.auth.middleware import session_cookie
from chat.auth.principal import principal_of
from chat.auth.sso import LOGIN_LIFETIME, SignOnRefused, SingleSignOn
from chat.responses import client_address
from chat.state import app_state

logger = logging.getLogger(__name__)

# The browser's half of a pending sign-on (chat.auth.sso). Over https the cookie is `__Host-`
# prefixed, so no sibling subdomain can plant one.
BROWSER_COOKIE = "chat_sso"
SECURE_BROWSER_COOKIE = "__Host-chat_sso"


async def oidc_login(request: Request) -> Response:
    sso = _single_sign_on(request)
    try:
        started = await sso.begin(
            next_path=request.query_params.get("next"),
            redirect_uri=str(request.url_for("oidc_callback")),
            browser=_browser(request),
        )
    except SignOnRefused as refused:
        return _refusal_page(request, refused)
    response = RedirectResponse(started.authorization_url, status_code=303)
    response.headers.append("set-cookie", _browser_cookie(request, started.browser))
    response.headers["Cache-Control"] = "no-store"
    return response


async def oidc_callback(request: Request) -> Response:
    sso = _single_sign_on(request)
    try:
        finished = await sso.finish(
            params=dict(request.query_params),
            browser=_browser(request),
            previous=principal_of(request),
        )
    except SignOnRefused as refused:
        return _refusal_page(request, refused)
    session = finished.session
    logger.info(
        "%s signed in through single sign-on",
        session.account.username,
        extra={"client": client_address(request), "user": session.account.id},
    )
    response = RedirectResponse(finished.next_path, status_code=303)
    response.headers.append(
        "set-cookie", session_cookie(request, session.token, expires_at=session.expires_at)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _single_sign_on(request: Request) -> SingleSignOn:
    sso = app_state(request)["sso"]
    if sso is None:
        raise HTTPException(404, "single sign-on is not configured on this server")
    return sso


def _browser(request: Request) -> str | None:
    return request.cookies.get(SECURE_BROWSER_COOKIE) or request.cookies.get(BROWSER_COOKIE)


def _browser_cookie(request: Request, value: str) -> str:
    secure = request.url.scheme == "https"
    attributes = [
        f"{SECURE_BROWSER_COOKIE if secure else BROWSER_COOKIE}={value}",
        "Path=/",
        f"Max-Age={int(LOGIN_LIFETIME.total_seconds())}",
        "HttpOnly",
        # Lax: the provider's redirect back is a top-level GET from another site, which Lax
        # cookies go along with (Strict ones would not).
        "SameSite=Lax",
    ]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def _refusal_page(request: Request, refused: SignOnRefused) -> Response:
    address = client_address(request)
    logger.warning(
        "refused single sign-on from %s: %s%s",
        address,
        refused.code,
        f" ({refused.detail})" if refused.detail else "",
        extra={"client": address, "code": refused.code},
    )
    response = app_state(request)["templates"].TemplateResponse(
        request,
        "sso_refused.html",
        {"message": refused.message, "code": refused.code},
        status_code=refused.status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
