"""The accounts JSON API: register, sign in and out, who am I, API tokens, invites, users.

Each handler parses, asks the account service once, and maps known errors (ClientError) to the
one JSON error shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.access import require_admin, require_signed_in
from chat.auth.middleware import clear_session_cookie, session_cookie
from chat.auth.principal import SignedIn, principal_of
from chat.auth.service import NewSession
from chat.auth.signin import check_password, start_session_replacing
from chat.errors import ClientError
from chat.responses import (
    client_address,
    error_response,
    is_local_request,
    read_json_object,
)
from chat.schemas import json_integer
from chat.state import app_state

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def answers_client_errors(handler: Handler) -> Handler:
    """Map a ClientError raised by the handler to its JSON error response."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ClientError as error:
            address = client_address(request)
            logger.info(
                "refused %s %s from %s: %s",
                request.method,
                request.url.path,
                address,
                error.code,
                extra={"client": address, "path": request.url.path, "code": error.code},
            )
            return error_response(error)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


# ---- sign-in ----


@answers_client_errors
async def register(request: Request) -> Response:
    state = app_state(request)
    payload = await read_json_object(request)
    account = await state["accounts"].register(
        username=payload.get("username"),
        password=payload.get("password"),
        display_name=payload.get("display_name"),
        invite=payload.get("invite"),
        from_loopback=is_local_request(request),
    )
    session = await start_session_replacing(request, account)
    return _signed_in_response(request, session, status_code=201)


@answers_client_errors
async def login(request: Request) -> Response:
    payload = await read_json_object(request)
    account = await check_password(
        request, username=payload.get("username"), password=payload.get("password")
    )
    session = await start_session_replacing(request, account)
    return _signed_in_response(request, session, status_code=200)


def _signed_in_response(request: Request, session: NewSession, *, status_code: int) -> Response:
    response = JSONResponse({"user": session.account.to_dict()}, status_code=status_code)
    response.headers.append(
        "set-cookie", session_cookie(request, session.token, expires_at=session.expires_at)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@answers_client_errors
async def logout(request: Request) -> Response:
    principal = principal_of(request)
    if isinstance(principal, SignedIn):
        await app_state(request)["accounts"].end_session(principal)
    response = Response(status_code=204)
    response.headers.append("set-cookie", clear_session_cookie(request))
    return response


@answers_client_errors
async def logout_everywhere(request: Request) -> Response:
    signed_in = require_signed_in(principal_of(request))
    await app_state(request)["accounts"].end_all_sessions(signed_in.account.id)
    response = Response(status_code=204)
    response.headers.append("set-cookie", clear_session_cookie(request))
    return response


@answers_client_errors
async def me(request: Request) -> Response:
    signed_in = require_signed_in(principal_of(request))
    return JSONResponse(
        {"user": signed_in.account.to_dict(), "signed_in_with": signed_in.credential.kind}
    )


# ---- personal API tokens ----


@answers_client_errors
async def list_tokens(request: Request) -> Response:
    signed_in = require_signed_in(principal_of(request))
    tokens = await app_state(request)["accounts"].tokens(signed_in.account)
    return JSONResponse({"tokens": [token.to_dict() for token in tokens]})


@answers_client_errors
async def create_token(request: Request) -> Response:
    signed_in = require_signed_in(principal_of(request))
    payload = await read_json_object(request)
    created = await app_state(request)["accounts"].create_token(
        signed_in.account, payload.get("name")
    )
    return JSONResponse(
        {**created.record.to_dict(), "token": created.token},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@answers_client_errors
async def revoke_token(request: Request) -> Response:
    signed_in = require_signed_in(principal_of(request))
    token_id = _path_id(request, "token_id")
    if not await app_state(request)["accounts"].revoke_token(signed_in.account, token_id):
        raise ClientError("not_found", "no such token", status=404)
    return Response(status_code=204)


# ---- invites (admins) ----


@answers_client_errors
async def list_invites(request: Request) -> Response:
    require_admin(principal_of(request))
    invites = await app_state(request)["accounts"].invites()
    return JSONResponse({"invites": [invite.to_dict() for invite in invites]})


@answers_client_errors
async def create_invite(request: Request) -> Response:
    admin = require_admin(principal_of(request))
    payload = await read_json_object(request)
    max_uses = _integer(payload.get("max_uses", 1), "max_uses")
    hours = _integer(payload.get("expires_in_hours", 7 * 24), "expires_in_hours")
    created = await app_state(request)["accounts"].create_invite(
        created_by=admin.account.id, max_uses=max_uses, valid_for=timedelta(hours=hours)
    )
    return JSONResponse(
        {"invite": {**created.record.to_dict(), "code": created.code}},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@answers_client_errors
async def revoke_invite(request: Request) -> Response:
    require_admin(principal_of(request))
    if not await app_state(request)["accounts"].revoke_invite(_path_id(request, "invite_id")):
        raise ClientError("not_found", "no such live invite", status=404)
    return Response(status_code=204)


# ---- users ----


@answers_client_errors
async def list_users(request: Request) -> Response:
    """Everyone signed in sees who has an account (to address them); admins see more."""
    signed_in = require_signed_in(principal_of(request))
    users = await app_state(request)["accounts"].users()
    if signed_in.account.is_admin:
        return JSONResponse({"users": [user.to_dict() for user in users]})
    return JSONResponse({"users": [user.account.to_dict() for user in users if not user.disabled]})


@answers_client_errors
async def update_user(request: Request) -> Response:
    """Admins disable or enable an account, and make or unmake admins."""
    admin = require_admin(principal_of(request))
    accounts = app_state(request)["accounts"]
    record = await accounts.user(str(request.path_params["username"]).lower())
    if record is None:
        raise ClientError("not_found", "no such user", status=404)
    payload = await read_json_object(request)
    unknown = sorted(set(payload) - {"disabled", "role"})
    if unknown:
        raise ClientError("unknown_field", f"unknown field {unknown[0]!r}")
    user_id = record.account.id
    if "role" in payload:
        role = payload["role"]
        if role not in ("admin", "member"):
            raise ClientError("invalid_role", "'role' is 'admin' or 'member'")
        if user_id == admin.account.id and role != "admin":
            raise ClientError("forbidden", "an admin cannot demote themselves", status=403)
        await accounts.set_role(user_id, str(role))
    if "disabled" in payload:
        disabled = payload["disabled"]
        if not isinstance(disabled, bool):
            raise ClientError("invalid_disabled", "'disabled' is true or false")
        if user_id == admin.account.id and disabled:
            raise ClientError("forbidden", "an admin cannot disable themselves", status=403)
        await accounts.set_disabled(user_id, disabled)
    updated = await accounts.user(record.account.username)
    assert updated is not None
    return JSONResponse({"user": updated.to_dict()})


# ---- parsing helpers ----


def _path_id(request: Request, name: str) -> int:
    raw = str(request.path_params[name])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ClientError("not_found", f"no such {name.removesuffix('_id')}", status=404)
    return int(raw)


def _integer(value: object, name: str) -> int:
    number = json_integer(value)
    if number is None:
        raise ClientError(f"invalid_{name}", f"{name!r} must be an integer")
    return number
