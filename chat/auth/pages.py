"""Sign in, register, sign out and the account page: forms that work without JavaScript.

Each handler reads the form, checks its token, asks the account service once, and answers a
refusal (a ClientError) with the same page again: the error named, what was typed kept (never a
password). A success redirects (303), so reloading the next page posts nothing again.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chat.auth.middleware import clear_session_cookie, session_cookie
from chat.auth.passwords import MIN_PASSWORD_CHARS
from chat.auth.principal import SignedIn, principal_of
from chat.auth.repository import TokenRecord
from chat.auth.service import NewSession, NewToken
from chat.auth.signin import check_password, start_session_replacing
from chat.errors import ClientError
from chat.forms import (
    Form,
    read_form,
    render_page,
    render_refusal,
    require_csrf,
    see_other,
    sign_in_path,
)
from chat.models import MAX_DISPLAY_NAME_CHARS, MAX_TOKEN_NAME_CHARS, MAX_USERNAME_CHARS
from chat.responses import is_local_request
from chat.schemas import format_timestamp
from chat.security import safe_next_path
from chat.state import app_state

LOGIN_PAGE = "login.html"
REGISTER_PAGE = "register.html"
LOGOUT_PAGE = "logout.html"
ACCOUNT_PAGE = "account.html"
ACCOUNT_PATH = "/account"
# Field lengths the forms tell the browser (the service checks them again).
FIELD_LIMITS = MappingProxyType(
    {
        "username": MAX_USERNAME_CHARS,
        "display_name": MAX_DISPLAY_NAME_CHARS,
        "token_name": MAX_TOKEN_NAME_CHARS,
        "min_password": MIN_PASSWORD_CHARS,
    }
)
# Token ids are database integers: anything longer is no token of ours (and would overflow).
_MAX_ID = 2**63 - 1


# ---- sign in ----


async def login_page(request: Request) -> Response:
    return render_page(request, LOGIN_PAGE, _login_context(request, request.query_params))


async def login(request: Request) -> Response:
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
        account = await check_password(
            request, username=form.get("username"), password=form.get("password")
        )
    except ClientError as error:
        return render_refusal(request, LOGIN_PAGE, error, _login_context(request, form))
    session = await start_session_replacing(request, account)
    return _signed_in(request, session, safe_next_path(form.get("next")))


def login_page_refused(request: Request, error: ClientError, *, next_path: str) -> Response:
    """The sign-in form, for a request refused because the person must sign in first."""
    return render_refusal(request, LOGIN_PAGE, error, _login_context(request, {"next": next_path}))


def _login_context(request: Request, typed: Form) -> dict[str, Any]:
    settings = app_state(request)["settings"]
    return {
        "limits": FIELD_LIMITS,
        "username": typed.get("username", ""),
        "next": safe_next_path(typed.get("next")),
        "oidc_name": settings.oidc_name if settings.oidc_enabled else None,
    }


def _signed_in(request: Request, session: NewSession, next_path: str) -> Response:
    response = see_other(next_path)
    response.headers.append(
        "set-cookie", session_cookie(request, session.token, expires_at=session.expires_at)
    )
    return response


# ---- register ----


async def register_page(request: Request) -> Response:
    return render_page(request, REGISTER_PAGE, _register_context(request.query_params))


async def register(request: Request) -> Response:
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
        account = await app_state(request)["accounts"].register(
            username=form.get("username"),
            password=form.get("password"),
            display_name=form.get("display_name"),
            invite=form.get("invite"),
            from_loopback=is_local_request(request),
        )
    except ClientError as error:
        return render_refusal(request, REGISTER_PAGE, error, _register_context(form))
    session = await start_session_replacing(request, account)
    return _signed_in(request, session, safe_next_path(form.get("next")))


def _register_context(typed: Form) -> dict[str, Any]:
    return {
        "limits": FIELD_LIMITS,
        "username": typed.get("username", ""),
        "display_name": typed.get("display_name", ""),
        "invite": typed.get("invite", ""),
        "next": safe_next_path(typed.get("next")),
    }


# ---- sign out ----


async def logout_page(request: Request) -> Response:
    """Asks first: following a link (or a prefetch) must never sign anyone out."""
    return render_page(request, LOGOUT_PAGE, _logout_context(request.query_params))


async def logout(request: Request) -> Response:
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
    except ClientError as error:
        return render_refusal(request, LOGOUT_PAGE, error, _logout_context(form))
    principal = principal_of(request)
    if isinstance(principal, SignedIn):
        await app_state(request)["accounts"].end_session(principal)
    return _signed_out(request, _logout_context(form)["next"])


def _logout_context(typed: Form) -> dict[str, Any]:
    return {"next": safe_next_path(typed.get("next"), default="/login")}


def _signed_out(request: Request, next_path: str) -> Response:
    response = see_other(next_path)
    response.headers.append("set-cookie", clear_session_cookie(request))
    return response


# ---- the account page ----


async def account_page(request: Request) -> Response:
    signed_in = principal_of(request)
    if not isinstance(signed_in, SignedIn):
        return see_other(sign_in_path(ACCOUNT_PATH))
    return await _account(request, signed_in)


async def logout_everywhere(request: Request) -> Response:
    signed_in = principal_of(request)
    if not isinstance(signed_in, SignedIn):
        return see_other(sign_in_path(ACCOUNT_PATH))
    try:
        require_csrf(request, await read_form(request))
    except ClientError as error:
        return await _account(request, signed_in, error=error)
    await app_state(request)["accounts"].end_all_sessions(signed_in.account.id)
    return _signed_out(request, "/login")


async def create_token(request: Request) -> Response:
    signed_in = principal_of(request)
    if not isinstance(signed_in, SignedIn):
        return see_other(sign_in_path(ACCOUNT_PATH))
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
        created = await app_state(request)["accounts"].create_token(
            signed_in.account, form.get("name")
        )
    except ClientError as error:
        return await _account(request, signed_in, error=error, token_name=form.get("name", ""))
    # Shown on this answer and never again (only its digest is stored), so no redirect here.
    return await _account(request, signed_in, created=created)


async def revoke_token(request: Request) -> Response:
    signed_in = principal_of(request)
    if not isinstance(signed_in, SignedIn):
        return see_other(sign_in_path(ACCOUNT_PATH))
    token_id: int = request.path_params["token_id"]
    try:
        require_csrf(request, await read_form(request))
        if token_id > _MAX_ID or not await app_state(request)["accounts"].revoke_token(
            signed_in.account, token_id
        ):
            raise ClientError("not_found", "no such token (was it revoked already?)", status=404)
    except ClientError as error:
        return await _account(request, signed_in, error=error)
    return see_other(ACCOUNT_PATH)


async def _account(
    request: Request,
    signed_in: SignedIn,
    *,
    error: ClientError | None = None,
    created: NewToken | None = None,
    token_name: str = "",
) -> Response:
    tokens = await app_state(request)["accounts"].tokens(signed_in.account)
    context = {
        "limits": FIELD_LIMITS,
        "account": signed_in.account,
        "signed_in_with": signed_in.credential.kind,
        "tokens": [_token_view(token) for token in tokens],
        "created": created,
        "token_name": token_name,
    }
    if error is not None:
        return render_refusal(request, ACCOUNT_PAGE, error, context)
    return render_page(request, ACCOUNT_PAGE, context, status_code=201 if created else 200)


def _token_view(token: TokenRecord) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "hint": token.hint,
        "created": _moment(token.created_at),
        "last_used": _moment(token.last_used_at) if token.last_used_at else None,
    }


def _moment(moment: datetime) -> dict[str, str]:
    """A time as a page shows it: exact in the `datetime` attribute, to the minute in text."""
    return {"iso": format_timestamp(moment), "text": moment.strftime("%Y-%m-%d %H:%M UTC")}
