"""The chat page, and the form post that works without JavaScript."""

from __future__ import annotations

import logging

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from chat.auth import pages as account_pages
from chat.auth.access import can_post, can_read, rate_limit_key, require_poster
from chat.auth.principal import account_of, principal_of
from chat.errors import ClientError, TryLater
from chat.forms import (
    Form,
    read_form,
    render_page,
    render_refusal,
    require_csrf,
    see_other,
    sign_in_path,
)
from chat.responses import client_address
from chat.rooms.names import GENERAL as GENERAL_ROOM
from chat.schemas import HistoryQuery, Limits, parse_draft
from chat.security import safe_next_path
from chat.state import app_state
from chat.writer import StorageUnavailable

logger = logging.getLogger(__name__)

INDEX_PAGE = "index.html"
AUTHOR_COOKIE = "chat_author"
ONE_YEAR_SECONDS = 365 * 24 * 3600


async def index(request: Request) -> Response:
    if not can_read(principal_of(request), app_state(request)["settings"]):
        return see_other(sign_in_path("/"))
    return await _render_index(request)


async def post_message_form(request: Request) -> Response:
    state = app_state(request)
    settings = state["settings"]
    principal = principal_of(request)
    account = account_of(request)
    form: Form = {}
    # Every refusal shows the page again with what was typed, so nothing is lost.
    try:
        form = await read_form(request)
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
        draft = parse_draft(
            {"body": form.get("body", ""), "author": form.get("author")},
            Limits.from_settings(settings),
        ).by(account)
        await state["service"].post(draft)
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
        return await _render_index(request, error=error, typed=form)
    except StorageUnavailable:
        unavailable = ClientError(
            "storage_unavailable",
            "the message was not stored: the server cannot save right now; try again",
            status=503,
        )
        return await _render_index(request, error=unavailable, typed=form)
    response = see_other(safe_next_path(form.get("next")))
    if account is None and draft.author:
        response.set_cookie(
            AUTHOR_COOKIE, draft.author, max_age=ONE_YEAR_SECONDS, httponly=True, samesite="lax"
        )
    return response


async def _render_index(
    request: Request, *, error: ClientError | None = None, typed: Form | None = None
) -> Response:
    state = app_state(request)
    settings = state["settings"]
    general = await state["rooms"].access(principal_of(request), GENERAL_ROOM)
    page = await state["service"].history(
        general.room.id, general.room.name, HistoryQuery(limit=settings.page_messages)
    )
    typed = typed or {}
    remembered = request.cookies.get(AUTHOR_COOKIE, "")
    context = {
        # `html` is the server-rendered, already escaped fragment: mark it safe once, here.
        "messages": [
            {**message.to_dict(), "html": Markup(message.html)} for message in page.messages
        ],
        "has_older": page.has_older,
        "max_message_chars": settings.max_message_chars,
        "max_author_chars": settings.max_author_chars,
        "can_post": can_post(principal_of(request), settings),
        "author": typed.get("author", remembered)[: settings.max_author_chars],
        "form_body": typed.get("body", ""),
    }
    if error is not None:
        return render_refusal(request, INDEX_PAGE, error, context)
    return render_page(request, INDEX_PAGE, context)
