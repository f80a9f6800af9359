"""Forms about messages that work without JavaScript: post to a room, edit your message, delete
a message (with a confirmation page first).

Each handler reads the form, checks its token, asks a service once, and answers success with a
redirect (POST-redirect-GET). A refusal shows the page again with the error as a sentence and
what was typed, with the error's status; a room the viewer may not see is the one 404 page.
"""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from chat.auth import pages as account_pages
from chat.auth.access import can_read, rate_limit_key, require_poster
from chat.auth.principal import account_of, principal_of
from chat.errors import ClientError, TryLater
from chat.forms import Form, read_form, render_page, render_refusal, require_csrf, see_other
from chat.repository import MessageRecord
from chat.responses import client_address
from chat.rooms.names import GENERAL
from chat.rooms.policy import RoomAccess
from chat.schemas import HistoryQuery, Limits, parse_draft
from chat.security import safe_next_path
from chat.state import app_state
from chat.web.room_page import AUTHOR_COOKIE, missing_page, render_room
from chat.writer import StorageUnavailable

logger = logging.getLogger(__name__)

EDIT_PAGE = "message_edit.html"
DELETE_PAGE = "message_delete.html"
ONE_YEAR_SECONDS = 365 * 24 * 3600


async def post_message_form(request: Request) -> Response:
    """`POST /a/message/new`: the page's form since before rooms; its `room` field (general
    when absent) names the room, and `next` where to go after."""
    return await _post(request, room=None)


async def post_room_message(request: Request) -> Response:
    """`POST /r/<name>/messages`."""
    return await _post(request, room=str(request.path_params["room"]))


async def _post(request: Request, *, room: str | None) -> Response:
    state = app_state(request)
    settings = state["settings"]
    principal = principal_of(request)
    account = account_of(request)
    form: Form = {}
    name = room or GENERAL
    # Every refusal shows the page again with what was typed, so nothing is lost.
    try:
        form = await read_form(request)
        name = room or form.get("room") or GENERAL
        require_csrf(request, form)
        require_poster(principal, settings)
        retry_after = state["post_limiter"].take(rate_limit_key(principal, client_address(request)))
        if retry_after > 0:
            state["metrics"].rate_limited("http")
            raise TryLater(
                "rate_limited",
                "you are sending too fast; wait a moment and send again",
                retry_after=retry_after,
            )
        access = await state["rooms"].access(principal, name)
        access.require_post()
        draft = parse_draft(
            {"body": form.get("body", ""), "author": form.get("author")},
            Limits.from_settings(settings),
        ).by(account)
        await state["service"].post(draft.in_room(access.room.name, access.room.id))
    except ClientError as error:
        logger.warning(
            "form post refused from %s: %s",
            client_address(request),
            error.code,
            extra={"client": client_address(request), "code": error.code},
        )
        if not can_read(principal, settings):
            # A guest who may not even read gets the sign-in form, not the conversation.
            return account_pages.login_page_refused(request, error, next_path="/")
        return await _page_again(request, name, error, form, home=room is None)
    except StorageUnavailable:
        unavailable = ClientError(
            "storage_unavailable",
            "the message was not stored: the server cannot save right now; try again",
            status=503,
        )
        return await _page_again(request, name, unavailable, form, home=room is None)
    default = "/" if room is None and name == GENERAL else f"/r/{access.room.name}"
    response = see_other(safe_next_path(form.get("next"), default) if room is None else default)
    if account is None and draft.author:
        response.set_cookie(
            AUTHOR_COOKIE, draft.author, max_age=ONE_YEAR_SECONDS, httponly=True, samesite="lax"
        )
    return response


async def _page_again(
    request: Request, name: str, error: ClientError, form: Form, *, home: bool
) -> Response:
    """The room's newest page with the error and what was typed; the 404 page when the room
    does not exist for the viewer."""
    try:
        access = await app_state(request)["rooms"].access(principal_of(request), name)
    except ClientError:
        return missing_page(request)
    query = HistoryQuery(limit=app_state(request)["settings"].page_messages)
    return await render_room(
        request, access, query=query, error=error, typed=form, home=home and name == GENERAL
    )


# ---- edit and delete ----


async def edit_page(request: Request) -> Response:
    """`GET /r/<name>/m/<id>/edit`: the message's text in a form (its author only)."""
    found = await _message(request)
    if isinstance(found, Response):
        return found
    access, record = found
    context = _context(request, access, record, body=record.body)
    account = access.account
    if account is None or record.user is None or record.user.id != account.id:
        refusal = ClientError("forbidden", "only its author may edit a message", status=403)
        return render_refusal(request, EDIT_PAGE, refusal, context)
    if record.deleted:
        refusal = ClientError("message_deleted", "that message was deleted", status=409)
        return render_refusal(request, EDIT_PAGE, refusal, context)
    return render_page(request, EDIT_PAGE, context)


async def edit_message(request: Request) -> Response:
    """`POST /r/<name>/m/<id>/edit` -> back to the message."""
    found = await _message(request)
    if isinstance(found, Response):
        return found
    access, record = found
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
        await app_state(request)["conversation"].edit(access, record.id, form.get("body", ""))
    except ClientError as error:
        context = _context(request, access, record, body=form.get("body", record.body))
        return render_refusal(request, EDIT_PAGE, error, context)
    return see_other(f"{_permalink(access, record)}#m{record.id}")


async def delete_page(request: Request) -> Response:
    """`GET /r/<name>/m/<id>/delete`: "delete this message?" with the message shown."""
    found = await _message(request)
    if isinstance(found, Response):
        return found
    access, record = found
    return render_page(request, DELETE_PAGE, _context(request, access, record, body=record.body))


async def delete_message(request: Request) -> Response:
    """`POST /r/<name>/m/<id>/delete` -> the room (its author, moderators, owners, admins)."""
    found = await _message(request)
    if isinstance(found, Response):
        return found
    access, record = found
    try:
        form = await read_form(request)
        require_csrf(request, form)
        await app_state(request)["conversation"].delete(access, record.id)
    except ClientError as error:
        return render_refusal(
            request, DELETE_PAGE, error, _context(request, access, record, body="")
        )
    return see_other(f"/r/{access.room.name}")


async def _message(request: Request) -> tuple[RoomAccess, MessageRecord] | Response:
    """The room (as the viewer stands in it) and the message, or the 404 page."""
    state = app_state(request)
    raw = str(request.path_params["message_id"])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return missing_page(request)
    try:
        access = await state["rooms"].access(
            principal_of(request), str(request.path_params["room"])
        )
        record = await state["conversation"].message(access, int(raw))
    except ClientError as error:
        return missing_page(request, error)
    return access, record


def _context(
    request: Request, access: RoomAccess, record: MessageRecord, *, body: str
) -> dict[str, Any]:
    shown = app_state(request)["service"].present(record, room=access.room.name)
    return {
        "room": access.room,
        "message": record,
        # The server-rendered, already escaped fragment: marked safe once, here.
        "message_html": Markup(shown.html),
        "body": body,
        "permalink": _permalink(access, record),
        "action": f"/r/{access.room.name}/m/{record.id}",
    }


def _permalink(access: RoomAccess, record: MessageRecord) -> str:
    return f"/r/{access.room.name}/m/{record.id}"
