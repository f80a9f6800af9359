"""Small response helpers shared by the route modules."""

from __future__ import annotations

import math

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from chat.schemas import ClientError

# Bodies above this are refused before they are parsed (413).
MAX_HTTP_BODY_BYTES = 64 * 1024


class BodyTooLarge(ClientError):
    def __init__(self, limit: int) -> None:
        super().__init__("body_too_large", f"request bodies are limited to {limit} bytes")


def error_response(error: ClientError, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"error": error.code, "detail": error.detail}, status_code=status_code)


def rate_limited_response(retry_after: float) -> JSONResponse:
    """429 naming when to retry; `retry_after` in seconds (rounded up for the header)."""
    error = ClientError("rate_limited", "too many messages from your address; slow down")
    response = JSONResponse(
        {"error": error.code, "detail": error.detail, "retry_after": round(retry_after, 3)},
        status_code=429,
    )
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def client_address(request: HTTPConnection) -> str:
    return request.client.host if request.client else "-"


async def read_bounded_body(request: Request, limit: int = MAX_HTTP_BODY_BYTES) -> bytes:
    """Read the request body, refusing it as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
