"""The rooms JSON API: list, create, show and change rooms; members; read positions; DMs.

Each handler parses, asks the room service once, and maps ClientError to the one JSON error
shape. A private room the caller does not belong to answers exactly as a missing one (404).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.access import require_reader
from chat.auth.principal import principal_of
from chat.auth.routes import answers_client_errors
from chat.errors import ClientError
from chat.responses import read_json_object
from chat.rooms.repository import Member
from chat.schemas import format_timestamp
from chat.state import app_state


@answers_client_errors
async def list_rooms(request: Request) -> Response:
    principal = principal_of(request)
    state = app_state(request)
    _require_reader(request)
    views = await state["rooms"].rooms(principal)
    return JSONResponse({"rooms": [view.to_dict(principal) for view in views]})


@answers_client_errors
async def create_room(request: Request) -> Response:
    principal = principal_of(request)
    payload = await read_json_object(request)
    view = await app_state(request)["rooms"].create(principal, payload)
    return JSONResponse({"room": view.to_dict(principal)}, status_code=201)


@answers_client_errors
async def show_room(request: Request) -> Response:
    principal = principal_of(request)
    rooms = app_state(request)["rooms"]
    access = await rooms.access(principal, _room_name(request))
    view = await rooms.view(access)
    return JSONResponse({"room": view.to_dict(principal)})


@answers_client_errors
async def update_room(request: Request) -> Response:
    principal = principal_of(request)
    rooms = app_state(request)["rooms"]
    access = await rooms.access(principal, _room_name(request))
    payload = await read_json_object(request)
    view = await rooms.update(access, payload)
    return JSONResponse({"room": view.to_dict(principal)})


@answers_client_errors
async def list_members(request: Request) -> Response:
    rooms = app_state(request)["rooms"]
    access = await rooms.access(principal_of(request), _room_name(request))
    members = await rooms.members(access)
    return JSONResponse({"members": [_member_json(member) for member in members]})


@answers_client_errors
async def add_member(request: Request) -> Response:
    rooms = app_state(request)["rooms"]
    access = await rooms.access(principal_of(request), _room_name(request))
    member = await rooms.add_member(access, str(request.path_params["username"]))
    return JSONResponse({"member": _member_json(member)})


@answers_client_errors
async def remove_member(request: Request) -> Response:
    rooms = app_state(request)["rooms"]
    access = await rooms.access(principal_of(request), _room_name(request))
    await rooms.remove_member(access, str(request.path_params["username"]))
    return Response(status_code=204)


@answers_client_errors
async def mark_read(request: Request) -> Response:
    rooms = app_state(request)["rooms"]
    access = await rooms.access(principal_of(request), _room_name(request))
    payload = await read_json_object(request)
    unread = await rooms.mark_read(access, payload.get("up_to"))
    return JSONResponse({"room": access.room.name, "unread": unread})


@answers_client_errors
async def start_direct_message(request: Request) -> Response:
    principal = principal_of(request)
    payload = await read_json_object(request)
    usernames = payload.get("usernames")
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        raise ClientError("invalid_usernames", "'usernames' must be a list of usernames")
    view = await app_state(request)["rooms"].direct_message(principal, usernames)
    return JSONResponse({"room": view.to_dict(principal)})


def _require_reader(request: Request) -> None:
    require_reader(principal_of(request), app_state(request)["settings"])


def _room_name(request: Request) -> str:
    return str(request.path_params["room"])


def _member_json(member: Member) -> dict[str, Any]:
    return {
        "user": member.account.public(),
        "role": member.membership.role,
        "joined_at": format_timestamp(member.membership.joined_at),
    }
