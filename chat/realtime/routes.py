"""Presence over HTTP: a room's members who are online or away, and (for admins) everyone."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.access import require_admin
from chat.auth.principal import principal_of
from chat.auth.routes import answers_client_errors
from chat.rooms.service import PRESENCE_ROOM_CAP
from chat.state import app_state


@answers_client_errors
async def room_presence(request: Request) -> Response:
    state = app_state(request)
    rooms = state["rooms"]
    access = await rooms.access(principal_of(request), str(request.path_params["room"]))
    members = await rooms.members(access)
    if len(members) > PRESENCE_ROOM_CAP:
        return JSONResponse({"room": access.room.name, "users": {}, "capped": True})
    statuses = state["presence"].statuses(member.account.id for member in members)
    return JSONResponse(
        {
            "room": access.room.name,
            "users": {str(u): s for u, s in statuses.items() if s != "offline"},
            "capped": False,
        }
    )


@answers_client_errors
async def everyone(request: Request) -> Response:
    require_admin(principal_of(request))
    statuses = app_state(request)["presence"].everyone()
    return JSONResponse({"users": {str(user): status for user, status in statuses.items()}})
