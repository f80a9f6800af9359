"""`GET /metrics`: the Prometheus text exposition, behind a bearer token when one is set.

With CHAT_METRICS off it answers 404, as an unknown path would (the route stays, so other
methods get 405 as everywhere else).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from chat.errors import ClientError
from chat.responses import error_response
from chat.security import bearer_token_matches
from chat.state import app_state


async def metrics(request: Request) -> Response:
    state = app_state(request)
    settings = state["settings"]
    if not settings.metrics:
        return PlainTextResponse("Not Found", status_code=404)
    token = settings.metrics_token
    if token is not None and not bearer_token_matches(request.headers.get("authorization"), token):
        error = ClientError(
            "unauthorized", "send Authorization: Bearer <CHAT_METRICS_TOKEN>", status=401
        )
        response = error_response(error)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    recorder = state["metrics"]
    return Response(recorder.exposition(), media_type=recorder.content_type)
