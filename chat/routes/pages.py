"""The HTML page, and the form post that works without JavaScript."""

from __future__ import annotations

import logging
import math
from urllib.parse import parse_qs

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from chat.errors import ClientError
from chat.responses import BodyTooLarge, client_address, read_bounded_body
from chat.schemas import HistoryQuery, Limits, parse_draft
from chat.security import csrf_token_matches, new_csrf_token, safe_next_path
from chat.state import app_state
from chat.writer import StorageUnavailable

logger = logging.getLogger(__name__)

CSRF_COOKIE = "_xsrf"
AUTHOR_COOKIE = "chat_author"
ONE_YEAR_SECONDS = 365 * 24 * 3600


async def index(request: Request) -> Response:
    return await _render_index(request)


async def post_message_form(request: Request) -> Response:
    state = app_state(request)
    settings = state["settings"]
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return PlainTextResponse("Send the form as application/x-www-form-urlencoded.", 415)
    try:
        fields = parse_qs((await read_bounded_body(request)).decode("utf-8", "replace"))
    except BodyTooLarge as error:
        return PlainTextResponse(error.detail, 413)
    form = {name: values[0] for name, values in fields.items()}
    typed = form.get("body", "")
    # Every refusal below shows the page again with what was typed, so nothing is lost.
    if not csrf_token_matches(request.cookies.get(CSRF_COOKIE), form.get("_xsrf")):
        logger.warning(
            "form post without a valid CSRF token from %s",
            client_address(request),
            extra={"client": client_address(request), "code": "csrf_failed"},
        )
        return await _render_index(
            request,
            form_error="The form expired or came from another site; check it and send again.",
            form_body=typed,
            status_code=403,
        )
    retry_after = state["post_limiter"].take(client_address(request))
    if retry_after > 0:
        state["metrics"].rate_limited("http")
        response = await _render_index(
            request,
            form_error="You are sending too fast; wait a moment and send again.",
            form_body=typed,
            status_code=429,
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return response
    try:
        draft = parse_draft(
            {"body": typed, "author": form.get("author")}, Limits.from_settings(settings)
        )
        await state["service"].post(draft)
    except ClientError as error:
        logger.warning(
            "form post rejected from %s: %s",
            client_address(request),
            error.code,
            extra={"client": client_address(request), "code": error.code},
        )
        return await _render_index(
            request, form_error=error.detail, form_body=typed, status_code=400
        )
    except StorageUnavailable:
        return await _render_index(
            request,
            form_error="The message was not stored: the server cannot save right now. Try again.",
            form_body=typed,
            status_code=503,
        )
    response = RedirectResponse(safe_next_path(form.get("next")), status_code=303)
    if draft.author:
        response.set_cookie(
            AUTHOR_COOKIE, draft.author, max_age=ONE_YEAR_SECONDS, httponly=True, samesite="lax"
        )
    return response


async def _render_index(
    request: Request,
    *,
    form_error: str | None = None,
    form_body: str = "",
    status_code: int = 200,
) -> Response:
    state = app_state(request)
    settings = state["settings"]
    page = await state["service"].history(HistoryQuery(limit=settings.page_messages))
    token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    response = state["templates"].TemplateResponse(
        request,
        "index.html",
        {
            # `html` is the server-rendered, already escaped fragment: mark it safe once, here.
            "messages": [
                {**message.to_dict(), "html": Markup(message.html)} for message in page.messages
            ],
            "has_older": page.has_older,
            "xsrf_token": token,
            "max_message_chars": settings.max_message_chars,
            "author": request.cookies.get(AUTHOR_COOKIE, "")[: settings.max_author_chars],
            "form_error": form_error,
            "form_body": form_body,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response
