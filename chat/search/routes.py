"""Search over HTTP: `GET /api/search` (JSON) and the `/search` page, which works without
JavaScript. Each parses the query string, asks the search service once, and answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.access import can_read
from chat.auth.principal import principal_of
from chat.auth.routes import answers_client_errors
from chat.errors import ClientError
from chat.forms import render_page, render_refusal, see_other, sign_in_path
from chat.search.service import SearchPage, parse_request
from chat.state import app_state

SEARCH_PAGE = "search.html"
# The page's filters, in the order its form shows them (also what "load more" carries on).
_FORM_FIELDS = ("q", "room", "from", "before", "after", "sort")


@answers_client_errors
async def search_api(request: Request) -> Response:
    search = parse_request(request.query_params)
    page = await app_state(request)["search"].search(principal_of(request), search)
    return JSONResponse(
        {
            "results": [hit.to_dict() for hit in page.hits],
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }
    )


async def search_page(request: Request) -> Response:
    principal = principal_of(request)
    if not can_read(principal, app_state(request)["settings"]):
        return see_other(sign_in_path(str(request.url.path) + "?" + request.url.query))
    typed = {name: request.query_params.get(name, "") for name in _FORM_FIELDS}
    context: dict[str, Any] = {"form": typed, "groups": [], "searched": False, "more": None}
    if not typed["q"].strip() and not typed["room"] and not typed["from"]:
        return render_page(request, SEARCH_PAGE, context)
    try:
        search = parse_request(request.query_params)
        page = await app_state(request)["search"].search(principal, search)
    except ClientError as error:
        return render_refusal(request, SEARCH_PAGE, error, context)
    more = _more_url(typed, page.next_cursor) if page.next_cursor is not None else None
    context.update(searched=True, groups=_grouped(page), more=more)
    return render_page(request, SEARCH_PAGE, context)


def _grouped(page: SearchPage) -> list[dict[str, Any]]:
    """Results by room, rooms in the order of their first (best or newest) result."""
    groups: dict[str, dict[str, Any]] = {}
    for hit in page.hits:
        room = hit.message["room"]
        group = groups.setdefault(room, {"name": room, "title": hit.room_title, "hits": []})
        group["hits"].append(
            {
                "message": hit.message,
                # Escaped by the search service, <mark> its only markup: safe once, here.
                "snippet": Markup(hit.snippet),
                "permalink": hit.permalink,
            }
        )
    return list(groups.values())


def _more_url(form: dict[str, str], cursor: str) -> str:
    fields = {name: value for name, value in form.items() if value}
    return "/search?" + urlencode({**fields, "cursor": cursor})
