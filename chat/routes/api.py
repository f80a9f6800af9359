"""JSON API: paginated history, posting, the OpenAPI document, health and readiness."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.access import rate_limit_key, require_poster, require_reader
from chat.auth.principal import account_of, principal_of
from chat.errors import ClientError
from chat.openapi import OPENAPI_DOCUMENT
from chat.responses import (
    client_address,
    error_response,
    rate_limited_response,
    read_json,
)
from chat.rooms.names import GENERAL as GENERAL_ROOM
from chat.schemas import Limits, parse_draft, parse_history_query
from chat.services import HistoryPage
from chat.state import app_state
from chat.writer import StorageUnavailable

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0
_REVISION_QUERY = text("SELECT version_num FROM alembic_version")


class MessagesEndpoint(HTTPEndpoint):
    """`/api/messages`: one route, so 405 answers list every method it supports in `Allow`."""

    async def get(self, request: Request) -> Response:
        return await list_messages(request)

    async def post(self, request: Request) -> Response:
        return await create_message(request)


class RoomMessagesEndpoint(HTTPEndpoint):
    """`/api/rooms/{room}/messages`: the same contract as /api/messages, for any room."""

    async def get(self, request: Request) -> Response:
        return await list_messages(request)

    async def post(self, request: Request) -> Response:
        return await create_message(request)


async def list_messages(request: Request) -> Response:
    """A page of a room's history: the room in the path, or general (/api/messages)."""
    state = app_state(request)
    settings = state["settings"]
    principal = principal_of(request)
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    try:
        require_reader(principal, settings)
        query = parse_history_query(
            params,
            default_limit=settings.history_page_default,
            max_limit=settings.history_page_max,
        )
        access = await state["rooms"].access(principal, _path_room(request) or GENERAL_ROOM)
        page = await state["service"].history(access.room.id, access.room.name, query)
    except ClientError as error:
        _log_client_error(request, error)
        return error_response(error)
    return JSONResponse(_page_payload(page))


async def create_message(request: Request) -> Response:
    state = app_state(request)
    settings = state["settings"]
    principal = principal_of(request)
    try:
        require_poster(principal, settings)
        payload = await read_json(request)
        retry_after = state["post_limiter"].take(rate_limit_key(principal, client_address(request)))
        if retry_after > 0:
            state["metrics"].rate_limited("http")
            return rate_limited_response(retry_after)
        draft = parse_draft(payload, Limits.from_settings(settings)).by(account_of(request))
        path_room = _path_room(request)
        names_room = isinstance(payload, dict) and "room" in payload
        if path_room is not None and names_room and draft.room != path_room:
            raise ClientError("conflicting_room", "the body names another room than the path")
        access = await state["rooms"].access(principal, path_room or draft.room)
        access.require_post()
        draft = draft.in_room(access.room.name, access.room.id)
        result = await state["service"].post(draft)
    except ClientError as error:
        _log_client_error(request, error)
        return error_response(error)
    except StorageUnavailable as error:
        unavailable = ClientError("storage_unavailable", f"the message was not stored: {error}")
        response = error_response(unavailable, 503)
        response.headers["Retry-After"] = "1"
        return response
    return JSONResponse(result.message.to_dict(), status_code=201 if result.created else 200)


async def openapi_document(request: Request) -> Response:
    return JSONResponse(OPENAPI_DOCUMENT)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = app_state(request)
    database, schema = await _database_ready(request)
    checks = {"database": database, "schema": schema, "broadcast": state["backend"].ready}
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def _database_ready(request: Request) -> tuple[bool, bool]:
    """Whether the database answers, and whether its schema is the revision this code needs
    (someone may have migrated it, or restored an older copy, since the server started)."""
    state = app_state(request)
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with state["engine"].connect() as connection:
                # Reads the file itself: on SQLite a bare SELECT 1 never touches it.
                revisions = (await connection.execute(_REVISION_QUERY)).scalars().all()
    except Exception as error:  # any failure means "not ready"; the reason goes to the log
        logger.warning("readiness check: database unavailable: %s", error)
        return False, False
    if revisions != [state["schema_head"]]:
        logger.warning(
            "readiness check: schema at %s, this server needs %s",
            ", ".join(revisions) or "nothing",
            state["schema_head"],
        )
        return True, False
    return True, True


def _path_room(request: Request) -> str | None:
    room = request.path_params.get("room")
    return str(room) if room is not None else None


def _page_payload(page: HistoryPage) -> dict[str, object]:
    return {
        "messages": [message.to_dict() for message in page.messages],
        "has_older": page.has_older,
        "has_newer": page.has_newer,
        "older_cursor": page.older_cursor,
        "newer_cursor": page.newer_cursor,
    }


def _log_client_error(request: Request, error: ClientError) -> None:
    address = client_address(request)
    logger.warning(
        "client error from %s on %s: %s",
        address,
        request.url.path,
        error.code,
        extra={"client": address, "path": request.url.path, "code": error.code},
    )
