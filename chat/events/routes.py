"""`GET /api/events`: catch up on every room at once after a disconnect.

`after` is the last `seq` the client applied. The answer holds, in log order, every change
since in the rooms the caller may read *now* (their rooms, plus the public rooms named in
`rooms`) and the news about the caller themselves, framed exactly as the socket sent them live,
so a client applies both the same way. Too far behind (more than CHAT_REPLAY_WINDOW changes,
or a cursor the log does not know) the answer is `{"reload": true}`: start again from a fresh
page and GET /api/rooms, never a silent gap.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chat.auth.access import require_reader
from chat.auth.principal import SignedIn, principal_of
from chat.auth.routes import answers_client_errors
from chat.errors import ClientError
from chat.events.frames import dumps
from chat.rooms.names import looks_like_room_name
from chat.schemas import MAX_CURSOR
from chat.state import app_state

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
MAX_NAMED_ROOMS = 1000


@answers_client_errors
async def catch_up(request: Request) -> Response:
    state = app_state(request)
    settings = state["settings"]
    principal = principal_of(request)
    require_reader(principal, settings)
    after = _integer(request, "after", default=None, high=MAX_CURSOR)
    if after is None:
        raise ClientError("missing_parameter", "'after' (the last seq you applied) is required")
    limit = min(_integer(request, "limit", default=DEFAULT_LIMIT, high=MAX_CURSOR) or 1, MAX_LIMIT)
    named = _room_names(request)
    latest = await state["service"].latest_id()
    if after > latest or latest - after > settings.replay_window:
        return JSONResponse({"reload": True, "cursor": latest, "events": [], "has_more": False})
    room_ids = await state["rooms"].readable_room_ids(principal, named)
    user_id = principal.account.id if isinstance(principal, SignedIn) else None
    envelopes = await state["service"].catch_up(
        after=after, through=latest, room_ids=room_ids, user_id=user_id, limit=limit + 1
    )
    page, has_more = envelopes[:limit], len(envelopes) > limit
    # Up to `latest` nothing else is for this caller once the last page is out: the cursor
    # moves there, so a quiet reader on a busy server does not fall out of the window.
    cursor = page[-1].seq if has_more else latest
    # The events are already serialized frames: splice them in rather than parse them again.
    head = dumps({"reload": False, "cursor": cursor, "has_more": has_more})
    body = f'{head[:-1]},"events":[{",".join(e.frame for e in page)}]}}'
    return Response(body, media_type="application/json")


def _integer(request: Request, name: str, *, default: int | None, high: int) -> int | None:
    values = request.query_params.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise ClientError("duplicate_parameter", f"{name!r} was given {len(values)} times")
    raw = values[0]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > high:
        raise ClientError("invalid_parameter", f"{name!r} must be a non-negative integer")
    return int(raw)


def _room_names(request: Request) -> list[str]:
    raw = ",".join(request.query_params.getlist("rooms"))
    names = [name for name in (part.strip() for part in raw.split(",")) if name]
    if len(names) > MAX_NAMED_ROOMS:
        raise ClientError("too_many_rooms", f"name at most {MAX_NAMED_ROOMS} rooms")
    bad = [name for name in names if not looks_like_room_name(name)]
    if bad:
        raise ClientError("invalid_parameter", f"{bad[0][:40]!r} is not a room name")
    return names
