"""`/chatsocket`: the Tornado demo's protocol, extended (see docs/protocol.md).

Each connection has two tasks: a receiver that parses frames and posts messages one at a time,
and a sender that drains this connection's bounded queue. The hub fills the queue without ever
waiting; when it overflows the connection is closed with 4008 and the client catches up later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket

from chat.broadcast.hub import Subscriber
from chat.schemas import ClientError, Limits, error_frame, parse_socket_frame
from chat.security import origin_allowed
from chat.services import ChatService
from chat.state import app_state
from chat.writer import StorageUnavailable

logger = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_SLOW_CONSUMER = 4008
# How long a close frame may take to leave; a client that reads nothing cannot stall us longer.
CLOSE_TIMEOUT_SECONDS = 1.0


async def chat_socket(websocket: WebSocket) -> None:
    state = app_state(websocket)
    settings = state["settings"]
    origin = websocket.headers.get("origin")
    if not origin_allowed(
        origin,
        host=websocket.headers.get("host"),
        scheme=websocket.url.scheme,
        allowed=settings.allowed_origins,
    ):
        logger.warning("refused WebSocket from %s: origin %r", _client(websocket), origin)
        await websocket.close(code=CLOSE_POLICY_VIOLATION)  # before accept: HTTP 403
        return
    await websocket.accept()
    hub = state["hub"]
    subscriber = hub.subscribe()
    limits = Limits.from_settings(settings)
    try:
        await _serve(websocket, subscriber, state["service"], limits)
    finally:
        hub.unsubscribe(subscriber)


async def _serve(
    websocket: WebSocket, subscriber: Subscriber, service: ChatService, limits: Limits
) -> None:
    receiver = asyncio.create_task(_receive_loop(websocket, subscriber, service, limits))
    sender = asyncio.create_task(_send_loop(websocket, subscriber))
    evicted = asyncio.create_task(subscriber.evicted.wait())
    tasks = {receiver, sender, evicted}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if subscriber.evicted.is_set():
        logger.warning("closing slow consumer %s: send queue full", _client(websocket))
        await _close(websocket, CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")


async def _receive_loop(
    websocket: WebSocket, subscriber: Subscriber, service: ChatService, limits: Limits
) -> None:
    max_protocol_chars = limits.max_protocol_frame_bytes
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None and len(text) > max_protocol_chars:
            # Normally the protocol layer already refused it (ws_max_size); this backstop holds
            # when the server runs under a plain `uvicorn` with a larger limit.
            await _close(websocket, CLOSE_MESSAGE_TOO_BIG, "frame too large")
            return
        try:
            if text is None:
                raise ClientError("binary_frame", "send messages as JSON text frames")
            draft = parse_socket_frame(text, limits)
        except ClientError as error:
            logger.warning("client error from %s: %s", _client(websocket), error.code)
            subscriber.offer(error_frame(error))
            continue
        try:
            result = await service.post(draft)
        except StorageUnavailable as error:
            unavailable = ClientError(
                "storage_unavailable",
                f"the message was not stored: {error}",
                client_id=draft.client_id,
            )
            subscriber.offer(error_frame(unavailable))
            continue
        if not result.created:
            # A resend of a stored message: answer the sender alone, broadcast nothing.
            subscriber.offer(result.message.to_frame())


async def _send_loop(websocket: WebSocket, subscriber: Subscriber) -> None:
    while True:
        frame = await subscriber.next_frame()
        await websocket.send_text(frame)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await websocket.close(code=code, reason=reason)


def _client(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "-"
