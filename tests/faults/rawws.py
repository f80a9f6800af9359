"""A WebSocket client on a plain blocking socket, driven by websockets' Sans-I/O protocol.

Unlike a library client it does nothing behind the test's back: it reads only when told to,
never answers a ping unless told to, and can vanish with a TCP reset. That makes it a slow
reader, a dead peer or a crashed browser on demand.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

READ_CHUNK = 65536


class HandshakeRefused(ConnectionError):
    def __init__(self, status: int) -> None:
        super().__init__(f"the server answered the upgrade with HTTP {status}")
        self.status = status


@dataclass
class Ending:
    """How a connection ended, from the client's side."""

    close_code: int | None  # from the server's close frame, if one arrived
    how: str  # "close frame", "eof" or "reset"
    text_frames: int  # data frames read before the end
    seconds: float


class RawSocket:
    def __init__(
        self,
        port: int,
        *,
        receive_buffer: int | None = None,
        origin: str | None = None,
        timeout: float = 5.0,
        handshake: bool = True,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            # Before connect, so the advertised TCP window is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(("127.0.0.1", port))
        except OSError:
            self.sock.close()
            raise
        self.protocol = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{port}/chatsocket"),
            origin=origin,  # type: ignore[arg-type]
            max_size=None,
        )
        self.text_frames = 0
        self.texts: list[str] = []  # every text frame read, in order
        self.local_port: int = self.sock.getsockname()[1]
        if handshake:
            try:
                self.send_upgrade()
                self.finish_handshake()
            except BaseException:
                self.sock.close()
                raise

    def send_upgrade(self) -> None:
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def finish_handshake(self) -> None:
        while self.protocol.state is State.CONNECTING and self.protocol.handshake_exc is None:
            data = self.sock.recv(READ_CHUNK)
            if not data:
                raise ConnectionError("the server closed the connection during the handshake")
            self.protocol.receive_data(data)
        events = self.protocol.events_received()
        response = events[0]
        assert isinstance(response, Response)
        if self.protocol.handshake_exc is not None or response.status_code != 101:
            raise HandshakeRefused(response.status_code)
        self._count(events[1:])

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def flush(self) -> None:
        """Send whatever the protocol has queued (frames made with `protocol.send_*`)."""
        self._flush()

    def read_some(self) -> None:
        """One read from the socket, keeping the text frames in `texts`."""
        data = self.sock.recv(READ_CHUNK)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.protocol.receive_data(data)
        self._count(self.protocol.events_received())

    def read_until_closed(self, seconds: float) -> Ending:
        """Read (never answering a ping) until the server closes or the socket dies."""
        started = time.monotonic()
        deadline = started + seconds
        how = "eof"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the server kept the connection open for {seconds}s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(READ_CHUNK)
            except ConnectionResetError:
                how = "reset"
                break
            if not data:
                break
            self.protocol.receive_data(data)
            self._count(self.protocol.events_received())
            if self.protocol.close_rcvd is not None:
                how = "close frame"
                break
        close = self.protocol.close_rcvd
        return Ending(
            close_code=close.code if close is not None else None,
            how=how,
            text_frames=self.text_frames,
            seconds=time.monotonic() - started,
        )

    def chatter_until_closed(self, seconds: float, *, read_every: float = 0.2) -> Ending:
        """Write pings every few milliseconds and read only every `read_every` seconds, like a
        busy client; stop at the server's close frame or when the connection dies."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            pause_until = time.monotonic() + read_every
            try:
                while time.monotonic() < pause_until:
                    self.protocol.send_ping(b"chatter")
                    self._flush()
                    time.sleep(0.005)  # pacing the chatter, not waiting for a condition
                self.sock.setblocking(False)
                try:
                    while data := self.sock.recv(READ_CHUNK):
                        self.protocol.receive_data(data)
                        self._count(self.protocol.events_received())
                except BlockingIOError:
                    pass
                finally:
                    self.sock.setblocking(True)
            except (ConnectionResetError, BrokenPipeError):
                return Ending(None, "reset", self.text_frames, time.monotonic() - started)
            close = self.protocol.close_rcvd
            if close is not None:
                self._flush()  # our close reply
                elapsed = time.monotonic() - started
                return Ending(close.code, "close frame", self.text_frames, elapsed)
        raise TimeoutError(f"the server kept the connection open for {seconds}s")

    def reset(self) -> None:
        """Vanish with a TCP RST (SO_LINGER 0), as a crashed client or a NAT timeout does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def _count(self, events: list[object]) -> None:
        for event in events:
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.text_frames += 1
                self.texts.append(event.data.decode())
