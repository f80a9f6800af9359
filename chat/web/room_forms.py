"""Forms about rooms that work without JavaScript: create a room, join and leave, the members
page (owners and moderators add people there), and direct messages at `/dm/<username>`.

Each handler checks the form's token, asks the room service once (its RoomAccess decides who
may), and redirects on success; a refusal shows the page again with the error. Nothing here
decides a permission itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from chat.auth.principal import SignedIn, principal_of
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
from chat.rooms.names import MAX_ROOM_NAME_CHARS, MAX_TITLE_CHARS, MAX_TOPIC_CHARS, dm_name
from chat.rooms.policy import RoomAccess
from chat.state import app_state
from chat.web.room_page import missing_page

NEW_ROOM_PAGE = "room_new.html"
MEMBERS_PAGE = "room_members.html"
DM_PAGE = "dm_start.html"
LIMITS = {"name": MAX_ROOM_NAME_CHARS, "title": MAX_TITLE_CHARS, "topic": MAX_TOPIC_CHARS}


# ---- create ----


async def new_room_page(request: Request) -> Response:
    if not isinstance(principal_of(request), SignedIn):
        return see_other(sign_in_path("/rooms/new"))
    return render_page(request, NEW_ROOM_PAGE, _new_room_context({}))


async def create_room(request: Request) -> Response:
    """`POST /rooms/new` -> the new room."""
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
        view = await app_state(request)["rooms"].create(
            principal_of(request),
            {
                "name": form.get("name", ""),
                "title": form.get("title") or None,
                "topic": form.get("topic") or None,
                "visibility": form.get("visibility", "public"),
            },
        )
    except ClientError as error:
        return render_refusal(request, NEW_ROOM_PAGE, error, _new_room_context(form))
    return see_other(f"/r/{view.summary.room.name}")


def _new_room_context(typed: Form) -> dict[str, Any]:
    return {
        "limits": LIMITS,
        "name": typed.get("name", ""),
        "room_title": typed.get("title", ""),
        "topic": typed.get("topic", ""),
        "visibility": "private" if typed.get("visibility") == "private" else "public",
    }


# ---- join, leave, members ----


async def join_room(request: Request) -> Response:
    """`POST /r/<name>/join`: join a public room yourself."""
    return await _membership_form(request, join=True)


async def leave_room(request: Request) -> Response:
    """`POST /r/<name>/leave` -> general (a private room left is gone for the leaver)."""
    return await _membership_form(request, join=False)


async def _membership_form(request: Request, *, join: bool) -> Response:
    access = await _access(request)
    if access is None:
        return missing_page(request)
    rooms = app_state(request)["rooms"]
    try:
        form = await read_form(request)
        require_csrf(request, form)
        if access.account is None:
            raise ClientError("unauthorized", "sign in to join a room", status=401)
        if join:
            await rooms.add_member(access, access.account.username)
        else:
            await rooms.remove_member(access, access.account.username)
    except ClientError as error:
        return await _members_page(request, access, error=error)
    return see_other(f"/r/{access.room.name}" if join else "/")


async def members_page(request: Request) -> Response:
    """`GET /r/<name>/members`."""
    access = await _access(request)
    if access is None:
        return missing_page(request)
    return await _members_page(request, access)


async def add_member(request: Request) -> Response:
    """`POST /r/<name>/members` (field `username`): owners and moderators add someone."""
    access = await _access(request)
    if access is None:
        return missing_page(request)
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
        await app_state(request)["rooms"].add_member(access, form.get("username", ""))
    except ClientError as error:
        return await _members_page(request, access, error=error, typed=form)
    return see_other(f"/r/{access.room.name}/members")


async def _members_page(
    request: Request,
    access: RoomAccess,
    *,
    error: ClientError | None = None,
    typed: Form | None = None,
) -> Response:
    rooms = app_state(request)["rooms"]
    members = await rooms.members(access)
    view = await rooms.view(access)
    context = {
        "room": access.room,
        "room_title": view.to_dict(principal_of(request))["title"],
        "members": members,
        "is_member": access.is_member,
        "can_join": access.can_add(target_is_self=True) and not access.is_member,
        "can_add": access.can_add(target_is_self=False),
        "username": (typed or {}).get("username", ""),
    }
    if error is not None:
        return render_refusal(request, MEMBERS_PAGE, error, context)
    return render_page(request, MEMBERS_PAGE, context)


# ---- direct messages ----


async def find_person(request: Request) -> Response:
    """`GET /dm?username=...`: the room list's "message someone" form, to /dm/<username>."""
    username = request.query_params.get("username", "").strip().lstrip("@").lower()
    if not username:
        return see_other("/")
    return see_other(f"/dm/{_path_safe(username)}")


async def direct_message_page(request: Request) -> Response:
    """`GET /dm/<username>`: the DM with this person if it exists (a redirect to it), else a
    button that starts it (a GET must not create anything)."""
    principal = principal_of(request)
    username = str(request.path_params["username"])
    if not isinstance(principal, SignedIn):
        return see_other(sign_in_path(f"/dm/{_path_safe(username)}"))
    state = app_state(request)
    record = await state["accounts"].user(username.strip().lower())
    if record is None or record.disabled:
        error = ClientError("no_such_user", f"no user named {username!r}", status=404)
        return render_refusal(request, DM_PAGE, error, {"person": None})
    name = dm_name([principal.account.id, record.account.id])
    if record.account.id != principal.account.id:
        try:
            await state["rooms"].access(principal, name)
        except ClientError:
            pass  # not started yet, or left: offer to start (or rejoin) it
        else:
            return see_other(f"/r/{name}")
    return render_page(request, DM_PAGE, {"person": record.account})


async def start_direct_message(request: Request) -> Response:
    """`POST /dm/<username>` -> the DM, found again or started by the room service."""
    principal = principal_of(request)
    username = str(request.path_params["username"])
    form: Form = {}
    try:
        form = await read_form(request)
        require_csrf(request, form)
        view = await app_state(request)["rooms"].direct_message(principal, [username])
    except ClientError as error:
        return render_refusal(request, DM_PAGE, error, {"person": None})
    return see_other(f"/r/{view.summary.room.name}")


async def _access(request: Request) -> RoomAccess | None:
    try:
        access: RoomAccess = await app_state(request)["rooms"].access(
            principal_of(request), str(request.path_params["room"])
        )
    except ClientError:
        return None
    return access


def _path_safe(username: str) -> str:
    """A username as one path segment (usernames are a-z 0-9 _ . -; anything else is quoted)."""
    return quote(username, safe="")
