"""The accounts JSON API: register, sign in and out, who am I, API tokens, invites, users.

Each handler parses, asks the account service once, and maps known errors (ClientError) to the
one JSON error shape.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.access import require_admin, require_signed_in
from chat.auth.middleware import clear_session_cookie, session_cookie
from chat.auth.principal import Account, SignedIn, principal_of
from chat.auth.repository import InviteRecord, TokenRecord, UserRecord
from chat.auth.service import NewSession
from chat.errors import ClientError
from chat.responses import (
    client_address,
    error_response,
    is_local_request,
    read_json_object,
)
from chat.schemas import format_timestamp
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
    session = await _start_session_replacing(request, account)
    return _signed_in_response(request, session, status_code=201)


@answers_client_errors
async def login(request: Request) -> Response:
    state = app_state(request)
    payload = await read_json_object(request)
    username = payload.get("username")
    address = client_address(request)
    throttle = state["throttle"]
    name = username if isinstance(username, str) else ""
    wait = throttle.retry_after(username=name, address=address)
    if wait > 0:
        return _throttled(wait)
    account = await state["accounts"].verify_password(
        username=username, password=payload.get("password")
    )
    if account is None:
        throttle.failed(username=name, address=address)
        logger.warning(
            "failed sign-in from %s",
            address,
            extra={"client": address, "code": "invalid_credentials"},
        )
        raise ClientError(
            "invalid_credentials", "the username or password is not right", status=401
        )
    throttle.succeeded(username=name)
    session = await _start_session_replacing(request, account)
    return _signed_in_response(request, session, status_code=200)


async def _start_session_replacing(request: Request, account: Account) -> NewSession:
    """A fresh session id on every sign-in; a session the browser had before ends."""
    accounts = app_state(request)["accounts"]
    previous = principal_of(request)
    if isinstance(previous, SignedIn):
        await accounts.end_session(previous)
    return await accounts.start_session(account)


def _signed_in_response(request: Request, session: NewSession, *, status_code: int) -> Response:
    response = JSONResponse({"user": session.account.to_dict()}, status_code=status_code)
    response.headers.append(
        "set-cookie", session_cookie(request, session.token, expires_at=session.expires_at)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _throttled(wait: float) -> Response:
    seconds = max(1, math.ceil(wait))
    return JSONResponse(
        {
            "error": "too_many_attempts",
            "detail": f"too many failed sign-ins; try again in {seconds} s",
            "retry_after": seconds,
        },
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


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
    return JSONResponse({"tokens": [_token_json(token) for token in tokens]})


@answers_client_errors
async def create_token(request: Request) -> Response:
    signed_in = require_signed_in(principal_of(request))
    payload = await read_json_object(request)
    created = await app_state(request)["accounts"].create_token(
        signed_in.account, payload.get("name")
    )
    return JSONResponse(
        {**_token_json(created.record), "token": created.token},
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


def _token_json(token: TokenRecord) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "hint": token.hint,
        "created_at": format_timestamp(token.created_at),
        "last_used_at": format_timestamp(token.last_used_at) if token.last_used_at else None,
    }


# ---- invites (admins) ----


@answers_client_errors
async def list_invites(request: Request) -> Response:
    require_admin(principal_of(request))
    invites = await app_state(request)["accounts"].invites()
    return JSONResponse({"invites": [_invite_json(invite) for invite in invites]})


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
        {"invite": {**_invite_json(created.record), "code": created.code}},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@answers_client_errors
async def revoke_invite(request: Request) -> Response:
    require_admin(principal_of(request))
    if not await app_state(request)["accounts"].revoke_invite(_path_id(request, "invite_id")):
        raise ClientError("not_found", "no such live invite", status=404)
    return Response(status_code=204)


def _invite_json(invite: InviteRecord) -> dict[str, Any]:
    return {
        "id": invite.id,
        "hint": invite.hint,
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "created_at": format_timestamp(invite.created_at),
        "expires_at": format_timestamp(invite.expires_at),
        "revoked": invite.revoked_at is not None,
    }


# ---- users ----


@answers_client_errors
async def list_users(request: Request) -> Response:
    """Everyone signed in sees who has an account (to address them); admins see more."""
    signed_in = require_signed_in(principal_of(request))
    users = await app_state(request)["accounts"].users()
    if signed_in.account.is_admin:
        return JSONResponse({"users": [_user_admin_json(user) for user in users]})
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
    return JSONResponse({"user": _user_admin_json(updated)})


def _user_admin_json(user: UserRecord) -> dict[str, Any]:
    return {
        **user.account.to_dict(),
        "disabled": user.disabled,
        "created_at": format_timestamp(user.created_at),
        "last_seen_at": format_timestamp(user.last_seen_at) if user.last_seen_at else None,
    }


# ---- parsing helpers ----


def _path_id(request: Request, name: str) -> int:
    raw = str(request.path_params[name])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ClientError("not_found", f"no such {name.removesuffix('_id')}", status=404)
    return int(raw)


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ClientError(f"invalid_{name}", f"{name!r} must be an integer")
    return value
