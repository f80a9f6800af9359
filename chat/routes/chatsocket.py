"""`/chatsocket`: the Tornado demo's protocol, extended (see docs/protocol.md).

The handler task receives: it parses frames and queues messages for storage in the order they
came, without waiting for each commit (at most MAX_UNCONFIRMED per connection). A sender task
drains the connection's bounded queue. The hub never waits for a client: it writes a frame
straight to a connection that has nothing queued and can take it now, queues it otherwise, and
when the queue overflows the connection is closed with 4008 and the client catches up later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from functools import partial

from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from chat.auth.access import can_post, can_read, rate_limit_key, sign_in_required
from chat.auth.principal import GUEST, Account, Principal, SignedIn, principal_of
from chat.broadcast.hub import Hub, Subscriber
from chat.conversation.service import ConversationService
from chat.errors import ClientError
from chat.events.records import room_topic
from chat.metrics import Metrics, NullMetrics
from chat.ratelimit import Rate, TokenBucket
from chat.realtime.passes import TypingPasses
from chat.realtime.presence import Presence
from chat.realtime.typing import Typing
from chat.responses import error_response
from chat.rooms.policy import RoomAccess
from chat.rooms.service import PRESENCE_ROOM_CAP, RoomService
from chat.schemas import (
    Draft,
    Limits,
    MessageCommand,
    RoomCommand,
    VisibilityCommand,
    client_id_of,
    dumps,
    error_frame,
    error_payload,
    parse_socket_frame,
)
from chat.security import origin_allowed
from chat.services import ChatService, PostResult
from chat.settings import Settings
from chat.state import AppState, app_state
from chat.wire import SHARED_SEND_EXTENSION
from chat.writer import StorageUnavailable

logger = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_SLOW_CONSUMER = 4008
# Messages a connection may have queued for storage and not yet confirmed. A client that sends
# faster waits (TCP backpressure) instead of growing the writer's queue.
MAX_UNCONFIRMED = 64
# Rooms one socket may listen to by `subscribe` (its own rooms come on top, whatever their number).
MAX_TOPICS = 1000
# How long a close frame may take to leave; a client that reads nothing cannot stall us longer.
CLOSE_TIMEOUT_SECONDS = 1.0


@dataclass(slots=True)
class _Connection:
    websocket: WebSocket
    subscriber: Subscriber
    service: ChatService
    rooms: RoomService
    conversation: ConversationService
    typing: Typing
    typing_passes: TypingPasses
    presence: Presence
    hub: Hub
    metrics: Metrics | NullMetrics
    limits: Limits
    bucket: TokenBucket
    max_strikes: int
    unconfirmed: asyncio.Semaphore  # slots for messages queued for storage, not yet stored
    settings: Settings
    principal: Principal = GUEST
    hidden: bool = False  # the page's tab is hidden (presence)
    strikes: int = 0  # consecutive frames refused by the rate limit
    close_code: int | None = None
    close_reason: str = ""

    @property
    def client(self) -> str:
        return _client(self.websocket)


async def chat_socket(websocket: WebSocket) -> None:
    state = app_state(websocket)
    settings = state["settings"]
    metrics = state["metrics"]
    origin = websocket.headers.get("origin")
    if not origin_allowed(
        origin,
        host=websocket.headers.get("host"),
        scheme=websocket.url.scheme,
        allowed=settings.allowed_origins,
        allow_missing=not settings.require_origin,
    ):
        logger.warning(
            "refused WebSocket from %s: origin %r",
            _client(websocket),
            origin,
            extra={"client": _client(websocket), "code": "origin_refused"},
        )
        metrics.connection_refused("origin")
        await websocket.close(code=CLOSE_POLICY_VIOLATION)  # before accept: HTTP 403
        return
    principal = principal_of(websocket)
    denial = _denial(websocket, principal, settings)
    if denial is not None:
        code, response = denial
        metrics.connection_refused(code)
        await websocket.send_denial_response(response)
        return
    address = websocket.client.host if websocket.client else "-"
    key = rate_limit_key(principal, address)
    connections = state["connections"]
    refused = connections.try_acquire(key)
    if refused is not None:
        metrics.connection_refused(await _deny_too_many(websocket, refused))
        return
    hub = state["hub"]
    account = principal.account if isinstance(principal, SignedIn) else None
    # On the hub (so membership changes from now on apply to it) before reading its rooms.
    subscriber = hub.subscribe(
        identity=principal, user_id=account.id if account is not None else None
    )
    accepted = False
    try:
        for room_id in await state["rooms"].subscribed_room_ids(principal):
            hub.add_topic(subscriber, room_topic(room_id))
        await websocket.accept()
        accepted = True
        metrics.socket_opened()
        connection = _open_connection(websocket, subscriber, state, metrics, settings)
        connection.principal = principal
        if account is not None:
            state["presence"].opened(account.id)
        await _serve(connection)
    finally:
        if accepted:
            metrics.socket_closed()
            if account is not None:
                state["presence"].closed(account.id, hidden=connection.hidden)
        hub.unsubscribe(subscriber)
        connections.release(key)


def _denial(
    websocket: WebSocket, principal: Principal, settings: Settings
) -> tuple[str, Response] | None:
    """Why a handshake may not open a socket and the HTTP answer it gets, or None."""
    refused = websocket.scope.get("auth_refused")
    if isinstance(refused, Response):
        code = "invalid_token"
    elif not can_read(principal, settings):
        code = "sign_in_required"
        refused = error_response(sign_in_required("read"))
    else:
        return None
    logger.warning(
        "refused WebSocket from %s: %s",
        _client(websocket),
        code,
        extra={"client": _client(websocket), "code": code},
    )
    return code, refused


def _open_connection(
    websocket: WebSocket,
    subscriber: Subscriber,
    state: AppState,
    metrics: Metrics | NullMetrics,
    settings: Settings,
) -> _Connection:
    return _Connection(
        websocket=websocket,
        subscriber=subscriber,
        service=state["service"],
        rooms=state["rooms"],
        conversation=state["conversation"],
        typing=state["typing"],
        typing_passes=TypingPasses(),
        presence=state["presence"],
        hub=state["hub"],
        metrics=metrics,
        settings=settings,
        limits=Limits.from_settings(settings),
        bucket=TokenBucket(
            Rate(per_second=settings.socket_rate_per_second, burst=settings.socket_rate_burst)
        ),
        max_strikes=settings.rate_limit_strikes,
        unconfirmed=asyncio.Semaphore(MAX_UNCONFIRMED),
    )


async def _deny_too_many(websocket: WebSocket, refused: str) -> str:
    """Refuse the handshake with 429 or 503; returns the error code sent."""
    if refused == "per_address":
        error = ClientError("too_many_connections", "too many connections from your address")
        status = 429
    else:
        error = ClientError("server_full", "the server has no room for more connections")
        status = 503
    logger.warning(
        "refused WebSocket from %s: %s",
        _client(websocket),
        error.code,
        extra={"client": _client(websocket), "code": error.code},
    )
    response = JSONResponse(
        {"error": error.code, "detail": error.detail},
        status_code=status,
        headers={"Retry-After": "5"},
    )
    await websocket.send_denial_response(response)
    return error.code


async def _serve(connection: _Connection) -> None:
    """Receive in this task, send in another; whichever ends first ends the connection."""
    sender = asyncio.create_task(_send_loop(connection))
    evictions: list[asyncio.Task[None]] = []  # held so the task is not garbage-collected

    def on_evicted() -> None:
        evictions.append(asyncio.create_task(_evict(connection, sender)))

    def on_close_request(code: int, reason: str) -> None:
        evictions.append(asyncio.create_task(_end(connection, sender, code, reason)))

    connection.subscriber.on_evicted = on_evicted
    connection.subscriber.on_close_request = on_close_request
    extensions = connection.websocket.scope.get("extensions") or {}
    shared_send = extensions.get(SHARED_SEND_EXTENSION)
    if shared_send is not None:
        connection.subscriber.direct = shared_send["send"]
        connection.subscriber.flush = shared_send["flush"]
    try:
        await _receive_loop(connection)
    finally:
        connection.subscriber.on_evicted = None
        connection.subscriber.on_close_request = None
        connection.subscriber.direct = None
        connection.subscriber.flush = None
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        for eviction in evictions:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await eviction
    if connection.close_code is not None and not evictions:
        await _close(connection.websocket, connection.close_code, connection.close_reason)


async def _evict(connection: _Connection, sender: asyncio.Task[None]) -> None:
    """Close a reader that fell `send_queue_size` frames behind; its page catches up later."""
    logger.warning(
        "closing slow consumer %s: send queue full",
        connection.client,
        extra={"client": connection.client, "code": "slow_consumer"},
    )
    await _end(connection, sender, CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")


async def _end(connection: _Connection, sender: asyncio.Task[None], code: int, reason: str) -> None:
    """Close the connection from the server's side, sending nothing more it had queued."""
    sender.cancel()  # it may be waiting forever for the reader's buffer to drain
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await sender
    # The close reaches the peer past its full buffers (chat.transport), and the server then
    # hands our receive loop a disconnect, which ends the connection.
    await _close(connection.websocket, code, reason)


async def _receive_loop(connection: _Connection) -> None:
    websocket = connection.websocket
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None and len(text) > connection.limits.max_protocol_frame_bytes:
            # Normally the protocol layer already refused it (ws_max_size); this backstop holds
            # when the server runs under a plain `uvicorn` with a larger limit.
            connection.close_code, connection.close_reason = (
                CLOSE_MESSAGE_TOO_BIG,
                "frame too large",
            )
            return
        if not _within_rate(connection, text):
            if connection.strikes >= connection.max_strikes:
                logger.warning(
                    "closing %s: sustained flooding",
                    connection.client,
                    extra={"client": connection.client, "code": "flooding"},
                )
                connection.close_code = CLOSE_POLICY_VIOLATION
                connection.close_reason = "rate limit exceeded repeatedly"
                return
            continue
        await _handle_frame(connection, text)


def _within_rate(connection: _Connection, text: str | None) -> bool:
    retry_after = connection.bucket.take()
    if retry_after == 0.0:
        connection.strikes = 0
        return True
    connection.strikes += 1
    connection.metrics.rate_limited("socket")
    if connection.strikes == 1:
        logger.warning(
            "rate limiting %s",
            connection.client,
            extra={"client": connection.client, "code": "rate_limited"},
        )
    error = ClientError(
        "rate_limited",
        "you are sending too fast; wait and resend",
        client_id=client_id_of(text, connection.limits),
    )
    payload = error_payload(error) | {"retry_after": round(retry_after, 3)}
    connection.subscriber.offer(dumps(payload))
    return False


async def _handle_frame(connection: _Connection, text: str | None) -> None:
    try:
        if text is None:
            raise ClientError("binary_frame", "send messages as JSON text frames")
        command = parse_socket_frame(text, connection.limits)
        if isinstance(command, RoomCommand):
            await _room_command(connection, command)
        elif isinstance(command, MessageCommand):
            await _message_command(connection, command)
        elif isinstance(command, VisibilityCommand):
            _visibility(connection, command)
        else:
            await _post(connection, command)
    except ClientError as error:
        logger.warning(
            "client error from %s: %s",
            connection.client,
            error.code,
            extra={"client": connection.client, "code": error.code},
        )
        connection.subscriber.offer(error_frame(error))


async def _post(connection: _Connection, draft: Draft) -> None:
    if not can_post(connection.principal, connection.settings):
        error = sign_in_required("post")
        error.client_id = draft.client_id
        raise error
    draft = draft.by(
        connection.principal.account if isinstance(connection.principal, SignedIn) else None
    )
    await connection.unconfirmed.acquire()
    try:
        await connection.service.post_in_order(draft, partial(_on_stored, connection, draft))
    except StorageUnavailable as error:  # shutting down: nothing was queued
        _on_stored(connection, draft, error)
    except ClientError:
        connection.unconfirmed.release()
        raise


async def _watch(connection: _Connection, access: RoomAccess) -> None:
    """Presence for one room on this socket: a snapshot now, each change after."""
    members = await connection.rooms.members(access)
    capped = len(members) > PRESENCE_ROOM_CAP
    connection.presence.watch(connection.subscriber, None if capped else access.room.id)
    statuses = (
        {}
        if capped
        else {
            str(user): status
            for user, status in connection.presence.statuses(
                member.account.id for member in members
            ).items()
            if status != "offline"
        }
    )
    connection.subscriber.offer(
        dumps(
            {
                "type": "presence_snapshot",
                "room": access.room.name,
                "users": statuses,
                "capped": capped,
            }
        )
    )


def _account(connection: _Connection) -> Account | None:
    principal = connection.principal
    return principal.account if isinstance(principal, SignedIn) else None


async def _message_command(connection: _Connection, command: MessageCommand) -> None:
    """Edit, delete or react: the change reaches everyone (this socket too) as a
    `message_updated` frame once committed; only a refusal is answered here."""
    try:
        access = await connection.rooms.access(connection.principal, command.room)
        conversation = connection.conversation
        if command.action == "edit":
            await conversation.edit(access, command.message_id, command.body)
        elif command.action == "delete":
            await conversation.delete(access, command.message_id)
        else:
            await conversation.react(access, command.message_id, command.emoji, on=command.on)
    except ClientError as error:
        error.client_id = command.client_id
        raise


def _visibility(connection: _Connection, command: VisibilityCommand) -> None:
    account = _account(connection)
    if account is not None and connection.hidden != command.hidden:
        connection.presence.visibility(
            account.id, was_hidden=connection.hidden, hidden=command.hidden
        )
    connection.hidden = command.hidden


async def _room_command(connection: _Connection, command: RoomCommand) -> None:
    """Listen to a room on this socket (any room the caller may read), or stop listening; say
    you are typing in it; watch who of its members is online."""
    if command.action == "typing":
        await _typing(connection, command.room)
        return
    access = await connection.rooms.access(connection.principal, command.room)
    if command.action == "watch":
        await _watch(connection, access)
        return
    topic = room_topic(access.room.id)
    subscriber = connection.subscriber
    if command.action == "subscribe":
        if topic not in subscriber.topics and len(subscriber.topics) >= MAX_TOPICS:
            raise ClientError("too_many_rooms", f"a socket listens to at most {MAX_TOPICS} rooms")
        connection.hub.add_topic(subscriber, topic)
    else:
        connection.hub.remove_topic(subscriber, topic)
    subscriber.offer(dumps({"type": f"{command.action}d", "room": access.room.name}))


async def _typing(connection: _Connection, room: str) -> None:
    account = _account(connection)
    listening = connection.subscriber.topics
    room_id = connection.typing_passes.room_id(room, listening)
    if room_id is None:
        access = await connection.rooms.access(connection.principal, room)
        if account is None:
            raise sign_in_required("type")
        access.require_post()
        room_id = access.room.id
        connection.typing_passes.grant(room, room_id, listening)
    assert account is not None  # a pass is only ever granted to an account
    await connection.typing.typed(account, room_id, room)


def _on_stored(
    connection: _Connection, draft: Draft, outcome: PostResult | StorageUnavailable | ClientError
) -> None:
    """The sender's answer once its message is committed: the broadcast already carried the
    echo; only a refusal or a resend of a stored message is answered here."""
    connection.unconfirmed.release()
    if isinstance(outcome, ClientError):  # refused: a guest took an account's name
        connection.subscriber.offer(error_frame(outcome))
    elif isinstance(outcome, StorageUnavailable):
        unavailable = ClientError(
            "storage_unavailable",
            f"the message was not stored: {outcome}",
            client_id=draft.client_id,
        )
        connection.subscriber.offer(error_frame(unavailable))
    elif not outcome.created:
        # A resend of a stored message: answer the sender alone, broadcast nothing.
        connection.subscriber.offer(outcome.message.to_frame())
    elif draft.user is not None:
        # Clients drop the author's indicator when the message arrives, so the next keystroke
        # is news at once rather than coalesced away for a few seconds.
        connection.typing.stopped(draft.user.id, outcome.message.room)


async def _send_loop(connection: _Connection) -> None:
    websocket = connection.websocket
    subscriber = connection.subscriber
    # None means evicted; _evict closes the connection.
    while (frame := await subscriber.next_frame()) is not None:
        # `chat.shared` lets chat.transport reuse the frame's wire bytes across recipients;
        # any other ASGI server just sends `text`.
        await websocket.send({"type": "websocket.send", "text": frame.text, "chat.shared": frame})
        subscriber.sent()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # Best effort: the peer may already be gone, and that is fine.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await websocket.close(code=code, reason=reason)


def _client(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "-"
