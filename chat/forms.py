"""HTML pages and their forms, which work without JavaScript: one way to read a posted form, to
check its token, and to render a page (again, after a refusal, with the error and what was typed).

Forms carry a double-submit token: a random value in an HttpOnly, SameSite=Strict cookie, repeated
in a hidden `_xsrf` field. Another site can make a browser post here, but it cannot read the cookie
to fill in the field, so its post is refused (403) before anything changes. CrossSiteRequestGuard
already refuses cookie-carrying posts with another site's Origin; the token also covers browsers
that send none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from chat.auth.principal import account_of
from chat.errors import ClientError, TryLater
from chat.responses import client_address, read_bounded_body
from chat.security import csrf_token_matches, new_csrf_token
from chat.state import app_state

logger = logging.getLogger(__name__)

CSRF_COOKIE = "_xsrf"
CSRF_FIELD = "_xsrf"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# No form here has more than a handful of fields; parsing stops long before the body limit.
MAX_FORM_FIELDS = 32

Form = Mapping[str, str]


async def read_form(request: Request) -> dict[str, str]:
    """The first value of every field of a urlencoded form (415, 413 and 400 as ClientError)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_MEDIA_TYPE:
        raise ClientError(
            "unsupported_media_type", f"send the form as {FORM_MEDIA_TYPE}", status=415
        )
    body = (await read_bounded_body(request)).decode("utf-8", "replace")
    try:
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise ClientError("invalid_form", "the form has too many fields") from None
    return {name: values[0] for name, values in fields.items()}


def require_csrf(request: Request, form: Form) -> None:
    """Refuse (403, `csrf_failed`) a form whose token does not match its cookie."""
    if csrf_token_matches(request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD)):
        return
    address = client_address(request)
    logger.warning(
        "form post to %s without a valid CSRF token from %s",
        request.url.path,
        address,
        extra={"client": address, "path": request.url.path, "code": "csrf_failed"},
    )
    raise ClientError(
        "csrf_failed",
        "the form expired or came from another site; check it and send again",
        status=403,
    )


def render_page(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    """A page of the site: the template with who is viewing and the form token, never cached
    (it shows who is signed in, and forms with a token)."""
    state = app_state(request)
    token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    response = state["templates"].TemplateResponse(
        request,
        template,
        {
            "viewer": account_of(request),
            "registration": state["settings"].registration,
            "xsrf_token": token,
            "error": None,
            **context,
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


def render_refusal(
    request: Request, template: str, error: ClientError, context: Mapping[str, Any]
) -> Response:
    """The page of a refused form again, with the status of the error and the error as a
    sentence. `context` carries what was typed, so nothing is lost (callers leave passwords out).
    """
    response = render_page(
        request, template, {**context, "error": sentence(error.detail)}, status_code=error.status
    )
    if isinstance(error, TryLater):
        response.headers["Retry-After"] = error.retry_after_header
    return response


def see_other(path: str) -> RedirectResponse:
    """After a form post succeeds: the browser GETs `path` (reloading it sends nothing again)."""
    return RedirectResponse(path, status_code=303)


def sign_in_path(next_path: str) -> str:
    return "/login?" + urlencode({"next": next_path})


def sentence(detail: str) -> str:
    """An error detail ("the name is taken") as a sentence for a page ("The name is taken.")."""
    text = detail.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
