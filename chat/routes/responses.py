"""Small response helpers shared by the route modules."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from chat.schemas import ClientError

# Bodies above this are refused before they are parsed (413).
MAX_HTTP_BODY_BYTES = 64 * 1024


class BodyTooLarge(ClientError):
    def __init__(self, limit: int) -> None:
        super().__init__("body_too_large", f"request bodies are limited to {limit} bytes")


def error_response(error: ClientError, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"error": error.code, "detail": error.detail}, status_code=status_code)


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
