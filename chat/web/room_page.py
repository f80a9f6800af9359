"""The room page, rendered on the server so it reads without JavaScript: `/` (general),
`/r/<name>` with `?before=` / `?after=` pages, and `/r/<name>/m/<id>` around one message.

Every room is looked up through the room service, whose RoomAccess decides; a room the viewer
may not see gets the one "no such room" page, the same bytes as a room that never existed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from chat.auth.access import can_read
from chat.auth.principal import Principal, principal_of
from chat.errors import ClientError
from chat.forms import Form, render_page, render_refusal, see_other, sign_in_path
from chat.rooms.names import GENERAL
from chat.rooms.policy import RoomAccess
from chat.rooms.service import RoomView
from chat.schemas import HistoryQuery, StoredMessage, parse_history_query
from chat.services import HistoryPage
from chat.state import app_state

logger = logging.getLogger(__name__)

ROOM_PAGE = "index.html"
MISSING_PAGE = "room_missing.html"
AUTHOR_COOKIE = "chat_author"
# The page's own query parameters; anything else in the URL (a tracking tag) is ignored.
_PAGE_PARAMETERS = ("before", "after")
# How much of a message the no-JavaScript list of editable messages shows.
EXCERPT_CHARS = 60


@dataclass(frozen=True, slots=True)
class RoomLink:
    """One entry of the room list."""

    id: int
    name: str
    title: str
    kind: str
    unread: int
    mentions: int
    member: bool
    current: bool


async def index(request: Request) -> Response:
    """`/`: the general room, as before rooms existed."""
    if not can_read(principal_of(request), app_state(request)["settings"]):
        return see_other(sign_in_path("/"))
    return await show_room(request, GENERAL, home=True)


async def room_page(request: Request) -> Response:
    return await show_room(request, str(request.path_params["room"]))


async def message_page(request: Request) -> Response:
    """`/r/<name>/m/<id>`: the page around one message, the message marked."""
    raw = str(request.path_params["message_id"])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return missing_page(request)
    name = str(request.path_params["room"])
    try:
        access = await app_state(request)["rooms"].access(principal_of(request), name)
    except ClientError:
        return missing_page(request)
    query = HistoryQuery(limit=app_state(request)["settings"].page_messages, around=int(raw))
    try:
        return await render_room(request, access, query=query, highlight=int(raw))
    except ClientError as error:  # no such message in this room
        return missing_page(request, error)


async def show_room(request: Request, name: str, *, home: bool = False) -> Response:
    try:
        access = await app_state(request)["rooms"].access(principal_of(request), name)
    except ClientError:
        return missing_page(request)
    error: ClientError | None = None
    try:
        query = page_query(request)
    except ClientError as refused:
        query, error = HistoryQuery(limit=app_state(request)["settings"].page_messages), refused
    return await render_room(request, access, query=query, error=error, home=home)


def page_query(request: Request) -> HistoryQuery:
    limit = app_state(request)["settings"].page_messages
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key in _PAGE_PARAMETERS:
            params.setdefault(key, []).append(value)
    return parse_history_query(params, default_limit=limit, max_limit=limit)


def missing_page(request: Request, error: ClientError | None = None) -> Response:
    """The one answer for a room (or message) that does not exist for this viewer: it names
    neither, so a private room and one that never existed read the same."""
    found = error is not None and error.code == "message_not_found"
    return render_page(
        request,
        MISSING_PAGE,
        {"what": "message" if found else "room", "here": request.url.path},
        status_code=404,
    )


async def render_room(
    request: Request,
    access: RoomAccess,
    *,
    query: HistoryQuery,
    error: ClientError | None = None,
    typed: Form | None = None,
    highlight: int | None = None,
    home: bool = False,
) -> Response:
    """The room page: the room list, the room's header, a page of its messages and the
    composer. `home` is `/`, whose composer posts to /a/message/new as it always did.
    Raises ClientError (404) when `query.around` is no message of the room."""
    state = app_state(request)
    settings = state["settings"]
    principal = principal_of(request)
    rooms = state["rooms"]
    room = access.room
    page = await state["service"].history(room.id, room.name, query)
    await _mark_seen(request, access, page)
    views = await rooms.rooms(principal)
    members = await rooms.members(access)
    current = next((view for view in views if view.summary.room.id == room.id), None)
    title = current.to_dict(principal)["title"] if current is not None else room.title
    typed = typed or {}
    remembered = request.cookies.get(AUTHOR_COOKIE, "")
    room_path = f"/r/{room.name}"
    context: dict[str, Any] = {
        "room": room,
        "room_title": title,
        "room_path": room_path,
        "member_count": len(members),
        "is_member": access.is_member,
        "can_join": access.can_add(target_is_self=True) and not access.is_member,
        "rooms": _room_links(views, principal, room.id),
        "messages": _messages(page.messages, access, settings.edit_window_seconds, highlight),
        "page": page,
        "newest_page": not page.has_newer,
        "highlight": highlight,
        "max_message_chars": settings.max_message_chars,
        "max_author_chars": settings.max_author_chars,
        "can_post": access.can_post(),
        "form_action": "/a/message/new" if home else f"{room_path}/messages",
        "next_path": "/" if home else room_path,
        "author": typed.get("author", remembered)[: settings.max_author_chars],
        "form_body": typed.get("body", ""),
    }
    if error is not None:
        return render_refusal(request, ROOM_PAGE, error, context)
    return render_page(request, ROOM_PAGE, context)


async def _mark_seen(request: Request, access: RoomAccess, page: HistoryPage) -> None:
    """A member who is shown the newest messages has seen them: the read position moves to the
    newest one on the page (what the person saw). An older page moves nothing."""
    membership = access.membership
    if membership is None or page.has_newer or not page.messages:
        return
    newest = page.messages[-1].id
    if newest > membership.last_read_id:
        await app_state(request)["rooms"].mark_read(access, newest)


def _room_links(views: list[RoomView], principal: Principal, current_id: int) -> list[RoomLink]:
    links = [
        RoomLink(
            id=view.summary.room.id,
            name=view.summary.room.name,
            title=str(view.to_dict(principal)["title"]),
            kind=view.summary.room.kind,
            unread=view.summary.unread,
            mentions=view.summary.mentions,
            member=view.summary.membership is not None,
            current=view.summary.room.id == current_id,
        )
        for view in views
    ]
    # Rooms first, then direct messages, each by name.
    return sorted(links, key=lambda link: (link.kind == "dm", link.name))


def _messages(
    messages: list[StoredMessage],
    access: RoomAccess,
    edit_window: float | None,
    highlight: int | None,
) -> list[dict[str, Any]]:
    """The page's messages with the day each starts (for the separators) and what the viewer
    may do with each (the no-JavaScript actions; the shared fragment cannot say it)."""
    viewer = access.account
    writable = not access.room.archived
    shown: list[dict[str, Any]] = []
    previous_day = ""
    for message in messages:
        day = message.created_at[:10]
        own = viewer is not None and message.user is not None and message.user.id == viewer.id
        can_edit = own and writable and not message.deleted and edit_window != 0
        can_delete = (own or access.can_manage()) and writable and not message.deleted
        html = Markup(message.html)
        if message.id == highlight:
            html = _highlighted(html)
        shown.append(
            {
                "id": message.id,
                "html": html,
                "day": day if day != previous_day else None,
                "day_label": _day_label(day),
                "created_at": message.created_at,
                "excerpt": _excerpt(message),
                "can_edit": can_edit,
                "can_delete": can_delete,
                "actionable": can_edit or can_delete,
            }
        )
        previous_day = day
    return shown


def _excerpt(message: StoredMessage) -> str:
    text = " ".join(message.body.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _highlighted(html: Markup) -> Markup:
    """The fragment with the `highlighted` class added to its outer element. The fragment is
    shared by every viewer (and cached), so the mark is added to this page's copy only."""
    prefix = '<div class="message"'
    if not html.startswith(prefix):
        logger.warning("a message fragment does not start with %r", prefix)
        return html
    return Markup('<div class="message highlighted"') + html[len(prefix) :]


def _day_label(day: str) -> str:
    """`2026-11-30` -> `Monday 30 November 2026` (UTC; the page's script may relabel it in the
    reader's time zone)."""
    moment = date.fromisoformat(day)
    return f"{moment:%A} {moment.day} {moment:%B %Y}"
