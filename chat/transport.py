"""The uvicorn WebSocket protocol the server runs (`--ws chat.transport:ChatWebSocketProtocol`).

It is uvicorn's websockets-sansio implementation with changes that the ASGI interface cannot
express:

* Broadcast frames are framed (and compressed) once and the same bytes are written to every
  connection: a `websocket.send` message may carry a `chat.shared` SharedFrame whose wire bytes
  are cached per encoding. permessage-deflate is negotiated with no context takeover in either
  direction, which makes a compressed message independent of the connection (so the bytes can
  be shared) and leaves no zlib state on an idle connection.

* A close frame is sent even while the peer has stopped reading. uvicorn waits for the write
  buffer to drain before every send, so closing a slow consumer would wait forever; the close
  frame is a few bytes, so it skips that wait, and if the peer still has not finished the
  closing handshake after `close_timeout` the connection is aborted: an evicted reader costs
  bounded memory for a bounded time.
* A text frame with invalid UTF-8 closes the connection with 1007 and one warning line, not
  with a logged traceback (it is a client mistake, not a server error).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from chat.wire import SHARED_SEND_EXTENSION, SharedFrame

logger = logging.getLogger(__name__)

CLOSE_INVALID_UTF8 = 1007
# Seconds a closed connection may still take to flush and finish the handshake before abort.
CLOSE_TIMEOUT_SECONDS = 5.0
# uvicorn's own choices for permessage-deflate, plus no context takeover both ways.
DEFLATE_WINDOW_BITS = 12
DEFLATE_COMPRESS_SETTINGS = {"memLevel": 5}


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.close_timeout = CLOSE_TIMEOUT_SECONDS
        self._write_paused = False
        # Broadcast frames handed over for one published batch leave in one write when the hub
        # flushes this connection: one syscall per connection per batch.
        self._pending: list[bytes] = []
        if self.config.ws_per_message_deflate:
            self.conn = ServerProtocol(
                extensions=[
                    ServerPerMessageDeflateFactory(
                        server_no_context_takeover=True,
                        client_no_context_takeover=True,
                        server_max_window_bits=DEFLATE_WINDOW_BITS,
                        client_max_window_bits=DEFLATE_WINDOW_BITS,
                        compress_settings=DEFLATE_COMPRESS_SETTINGS,
                    )
                ],
                max_size=self.config.ws_max_size,
                logger=logging.getLogger("uvicorn.error"),
            )

    def pause_writing(self) -> None:
        self._write_paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        super().resume_writing()

    async def send(self, message: Any) -> None:
        shared = message.get("chat.shared")
        if isinstance(shared, SharedFrame) and await self._send_shared(shared):
            return
        self._flush_pending()  # whatever uvicorn writes next must follow the queued frames
        if message.get("type") != "websocket.close":
            await super().send(message)
            if message.get("type") == "websocket.http.response.body" and self.close_sent:
                # A denial response (the 429/503 connection caps) ends the handshake as
                # deliberately as a 403 does, but uvicorn marks only the 403 so and would log
                # "ASGI callable returned without completing handshake" at ERROR.
                self.handshake_complete = True
            return
        self.writable.set()  # let the close frame through even if the peer reads nothing
        try:
            await super().send(message)
        finally:
            if self._write_paused and not self.disconnected:
                self.writable.clear()
        if self.close_sent and not self.disconnected:
            self.loop.call_later(2 * self.close_timeout, self._abort_if_open)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The app may hand broadcast frames over synchronously through this, skipping a task
        # switch per recipient whenever nothing is queued for the connection; the frames of a
        # batch handed over this way leave in one write when it calls `flush`.
        self.scope["extensions"][SHARED_SEND_EXTENSION] = {
            "send": self.send_shared_now,
            "flush": self.flush_shared,
        }

    async def _send_shared(self, frame: SharedFrame) -> bool:
        await self.writable.wait()
        if self.disconnected:
            return False  # let uvicorn's own path report the disconnect
        if not self.send_shared_now(frame):
            return False
        self._flush_pending()
        return True

    def send_shared_now(self, frame: SharedFrame) -> bool:
        """Take a broadcast frame's cached wire bytes if the connection can take it now (open,
        write buffer below the high-water mark), to be written by the next flush; False means
        queue it instead."""
        if not self.writable.is_set() or self.disconnected or self.close_sent:
            return False
        if not self.handshake_complete or self.initial_response is not None:
            return False
        key = self._encoding_key()
        if key is None:
            return False
        wire = frame.encoded.get(key)
        if wire is None:
            wire = Frame(Opcode.TEXT, frame.utf8).serialize(
                mask=False, extensions=self.conn.extensions
            )
            frame.encoded[key] = wire
        self._pending.append(wire)
        return True

    def flush_shared(self) -> None:
        """Write every frame `send_shared_now` queued since the last flush, in one write."""
        self._flush_pending()

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self.disconnected and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pending.clear()
        super().connection_lost(exc)

    def _encoding_key(self) -> Hashable | None:
        """What the wire bytes of a frame depend on for this connection, if they can be shared."""
        extensions = self.conn.extensions
        if not extensions:
            return "plain"
        if len(extensions) == 1 and isinstance(extensions[0], PerMessageDeflate):
            deflate = extensions[0]
            if deflate.local_no_context_takeover:
                return ("deflate", deflate.local_max_window_bits)
        return None  # compression state carries over between messages: frame per connection

    def _abort_if_open(self) -> None:
        if not self.disconnected:
            self.transport.abort()

    def shutdown(self) -> None:
        """Server shutdown: send 1012, then wait for the peer's close frame before closing.

        uvicorn closes the TCP connection right after writing its close frame. A peer still
        sending at that moment gets a reset, and the reset throws away the close frame it has
        not read yet: it sees 1006 instead of 1012. So keep reading until the peer answers
        (`handle_close` then closes), and abort after `close_timeout` if it never does.
        """
        if not self.handshake_complete or self.close_sent or self.transport.is_closing():
            super().shutdown()
            return
        self.stop_keepalive()
        self._flush_pending()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1012})
        self.conn.send_close(1012)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:  # frames are discarded from now on: read on to the reply
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self._abort_if_open)

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                self.frames = []
                client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
                logger.warning("closing %s: invalid UTF-8 in a text frame", client)
                self._flush_pending()
                self.conn.send_close(CLOSE_INVALID_UTF8, "invalid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()
