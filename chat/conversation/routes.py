"""HTTP routes for changing stored messages: edit, delete, react; one message; its versions.

Each handler parses, finds the caller's standing in the room (a private room not theirs is 404
like a missing one), asks the conversation service once, and maps ClientError to JSON.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.principal import principal_of
from chat.auth.routes import answers_client_errors
from chat.conversation.service import no_such_message
from chat.responses import read_json_object
from chat.rooms.policy import RoomAccess
from chat.schemas import format_timestamp
from chat.state import app_state


@answers_client_errors
async def show_message(request: Request) -> Response:
    access = await _access(request)
    state = app_state(request)
    record = await state["conversation"].message(access, _message_id(request))
    message = state["service"].present(record, room=access.room.name)
    return JSONResponse({"message": message.to_dict()})


@answers_client_errors
async def edit_message(request: Request) -> Response:
    access = await _access(request)
    payload = await read_json_object(request)
    state = app_state(request)
    message_id = _message_id(request)
    await state["conversation"].edit(access, message_id, payload.get("body"))
    record = await state["conversation"].message(access, message_id)
    return JSONResponse(
        {"message": state["service"].present(record, room=access.room.name).to_dict()}
    )


@answers_client_errors
async def delete_message(request: Request) -> Response:
    access = await _access(request)
    await app_state(request)["conversation"].delete(access, _message_id(request))
    return Response(status_code=204)


@answers_client_errors
async def message_history(request: Request) -> Response:
    access = await _access(request)
    state = app_state(request)
    versions = await state["conversation"].versions(access, _message_id(request))
    message = state["service"].present(versions.current, room=access.room.name)
    return JSONResponse(
        {
            "message": message.to_dict(),
            "versions": [
                {
                    "body": version.body,
                    "written_at": format_timestamp(version.written_at),
                    "replaced_at": format_timestamp(version.replaced_at),
                }
                for version in versions.earlier
            ],
        }
    )


@answers_client_errors
async def add_reaction(request: Request) -> Response:
    return await _react(request, on=True)


@answers_client_errors
async def remove_reaction(request: Request) -> Response:
    return await _react(request, on=False)


async def _react(request: Request, *, on: bool) -> Response:
    access = await _access(request)
    emoji = str(request.path_params["emoji"])
    await app_state(request)["conversation"].react(access, _message_id(request), emoji, on=on)
    return Response(status_code=204)


async def _access(request: Request) -> RoomAccess:
    rooms = app_state(request)["rooms"]
    access: RoomAccess = await rooms.access(principal_of(request), str(request.path_params["room"]))
    return access


def _message_id(request: Request) -> int:
    raw = str(request.path_params["message_id"])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise no_such_message()
    return int(raw)
