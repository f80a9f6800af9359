"""Signing in with a password, as the JSON API and the sign-in form both do it.

Attempts are throttled per username and per client address (chat.auth.throttle) before the
password is checked. A success starts a new session and ends the one the browser had, so a
session id planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import logging
import math

from starlette.requests import Request

from chat.auth.principal import Account, SignedIn, principal_of
from chat.auth.service import NewSession
from chat.errors import ClientError, TryLater
from chat.responses import client_address
from chat.state import app_state

logger = logging.getLogger(__name__)


async def check_password(request: Request, *, username: object, password: object) -> Account:
    """The account these credentials sign in to; TryLater when this username or address must
    wait, ClientError `invalid_credentials` (401) otherwise, whatever was wrong."""
    state = app_state(request)
    throttle = state["throttle"]
    address = client_address(request)
    name = username if isinstance(username, str) else ""
    wait = throttle.retry_after(username=name, address=address)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TryLater(
            "too_many_attempts",
            f"too many failed sign-ins; try again in {seconds} s",
            retry_after=seconds,
        )
    account = await state["accounts"].verify_password(username=username, password=password)
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
    return account


async def start_session_replacing(request: Request, account: Account) -> NewSession:
    """A fresh session id on every sign-in; a session the browser had before ends."""
    accounts = app_state(request)["accounts"]
    previous = principal_of(request)
    if isinstance(previous, SignedIn):
        await accounts.end_session(previous)
    return await accounts.start_session(account)
