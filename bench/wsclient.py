"""A lean WebSocket client: ``websockets``' Sans-I/O ``ClientProtocol`` under an asyncio Protocol.

The library's asyncio client spends most of its time per frame in tasks, futures and the message
assembler; at tens of thousands of frames a second that made the load generator the bottleneck.
Driving the same protocol object from ``data_received`` costs a fraction of that and keeps the
framing, the handshake and permessage-deflate in the library's hands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

TextHandler = Callable[["WsClient", bytes, int], None]


class HandshakeError(ConnectionError):
    """The server refused the WebSocket upgrade."""


class WsClient(asyncio.Protocol):
    """One connection; every complete text message goes to ``on_text(client, data, index)``."""

    def __init__(
        self,
        url: str,
        *,
        index: int,
        compression: str | None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        extensions = enable_client_permessage_deflate(None) if compression == "deflate" else None
        self.protocol = ClientProtocol(parse_uri(url), extensions=extensions, max_size=None)
        self.index = index
        self.on_text: TextHandler | None = None
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._fragments: list[bytes] = []
        self._headers = tuple(headers)

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def deflate(self) -> bool:
        return bool(self.protocol.extensions)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = self.protocol.connect()
        for name, value in self._headers:
            request.headers[name] = value
        self.protocol.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._handle_events()
        self._flush()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._handle_events()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # WebSocket

    def send_text(self, text: bytes) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_text(text)
            self._flush()

    async def close(self, wait: float = 3.0) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self._flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), wait)
        if self.transport is not None and not self.closed.done():
            self.transport.abort()

    def _handle_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self._on_response()
            elif isinstance(event, Frame):
                self._on_frame(event)

    def _on_response(self) -> None:
        if self.opened.done():
            return
        if self.protocol.handshake_exc is not None:
            self.opened.set_exception(HandshakeError(str(self.protocol.handshake_exc)))
        else:
            self.opened.set_result(None)

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT or (frame.opcode is Opcode.CONT and self._fragments):
            if not frame.fin:
                self._fragments.append(bytes(frame.data))
                return
            data = bytes(frame.data)
            if self._fragments:
                data = b"".join([*self._fragments, data])
                self._fragments.clear()
            if self.on_text is not None:
                self.on_text(self, data, self.index)

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in self.protocol.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.protocol.close_expected() and self.protocol.state is State.CLOSED:
            transport.close()


async def open_connection(
    url: str,
    *,
    index: int,
    compression: str | None,
    headers: Sequence[tuple[str, str]] = (),
) -> WsClient:
    """Connect and complete the handshake; raise ``HandshakeError`` or ``OSError`` on failure.
    ``headers`` go on the upgrade request (an ``Authorization`` for a signed-in socket)."""
    uri = parse_uri(url)
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WsClient(url, index=index, compression=compression, headers=headers),
        uri.host,
        uri.port,
    )
    try:
        await client.opened
    except BaseException:
        if client.transport is not None:
            client.transport.abort()
        raise
    return client
