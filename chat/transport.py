"""The uvicorn WebSocket protocol the server runs (`--ws chat.transport:ChatWebSocketProtocol`).

It is uvicorn's websockets-sansio implementation with two changes that the ASGI interface
cannot express:

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

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

logger = logging.getLogger(__name__)

CLOSE_INVALID_UTF8 = 1007
# Seconds a closed connection may still take to flush and finish the handshake before abort.
CLOSE_TIMEOUT_SECONDS = 5.0


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.close_timeout = CLOSE_TIMEOUT_SECONDS
        self._write_paused = False

    def pause_writing(self) -> None:
        self._write_paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        super().resume_writing()

    async def send(self, message: object) -> None:  # type: ignore[override]
        if not (isinstance(message, dict) and message.get("type") == "websocket.close"):
            await super().send(message)  # type: ignore[arg-type]
            return
        self.writable.set()  # let the close frame through even if the peer reads nothing
        try:
            await super().send(message)  # type: ignore[arg-type]
        finally:
            if self._write_paused and not self.disconnected:
                self.writable.clear()
        if self.close_sent and not self.disconnected:
            self.loop.call_later(2 * self.close_timeout, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self.disconnected:
            self.transport.abort()

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                self.frames = []
                client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
                logger.warning("closing %s: invalid UTF-8 in a text frame", client)
                self.conn.send_close(CLOSE_INVALID_UTF8, "invalid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()
