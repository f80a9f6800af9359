"""HTTP helpers shared by every route module: the JSON error response, bounded bodies, client
addresses."""

from __future__ import annotations

import ipaddress
import json
import math

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from chat.errors import ClientError, TryLater

# Bodies above this are refused before they are parsed (413).
MAX_HTTP_BODY_BYTES = 64 * 1024


# A request relayed by a proxy on this machine carries one of these; it is not "local".
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class BodyTooLarge(ClientError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "body_too_large", f"request bodies are limited to {limit} bytes", status=413
        )


def error_response(error: ClientError, status_code: int | None = None) -> JSONResponse:
    response = JSONResponse(error.to_json(), status_code=status_code or error.status)
    if isinstance(error, TryLater):
        response.headers["Retry-After"] = error.retry_after_header
    return response


async def read_json(request: Request) -> object:
    """The decoded JSON body of an application/json request, or a ClientError (415/413/400)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ClientError("unsupported_media_type", "send the body as application/json", status=415)
    raw = await read_bounded_body(request)
    try:
        return json.loads(raw)
    except ValueError:
        raise ClientError("invalid_json", "the request body is not valid JSON") from None


async def read_json_object(request: Request) -> dict[str, object]:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise ClientError("invalid_body", "the request body must be a JSON object")
    return payload


def is_local_request(connection: HTTPConnection) -> bool:
    """From this machine itself, not relayed by a proxy: a loopback peer, no forwarding
    headers (behind a proxy, run with --proxy-headers so the peer is the real client)."""
    if any(name in connection.headers for name in _FORWARDING_HEADERS):
        return False
    host = connection.client.host if connection.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
