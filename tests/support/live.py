"""A real uvicorn server on a real loopback socket, run in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from chat.app import create_app
from chat.forwarded import behind_proxy
from chat.settings import Settings
from chat.transport import ChatWebSocketProtocol

START_TIMEOUT_S = 30.0  # a loaded 2-core machine is slow to start a server
STOP_TIMEOUT_S = 15.0


class LiveServer:
    def __init__(
        self,
        settings: Settings | Callable[[str], Settings],
        *,
        forwarded_allow_ips: str | None = None,
    ) -> None:
        """`settings` may be a function of the server's URL, for settings that name the server
        itself (an OpenID client's redirect URI), since the port is known only once bound.

        `forwarded_allow_ips` serves as `chat --proxy-headers --forwarded-allow-ips` does; by
        default proxy headers are ignored, as `chat` does without `--proxy-headers`."""
        # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
        # without it every response waits out the client's 40 ms delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/chatsocket"
        self.origin = self.url
        try:
            self.settings = settings if isinstance(settings, Settings) else settings(self.url)
        except BaseException:
            self._socket.close()
            raise
        app: ASGIApp = create_app(self.settings)
        if forwarded_allow_ips is not None:
            app = behind_proxy(app, forwarded_allow_ips)
        config = uvicorn.Config(
            app,
            proxy_headers=False,
            log_config=None,
            log_level="warning",
            ws=ChatWebSocketProtocol,
            ws_max_size=self.settings.max_protocol_frame_bytes,
            ws_ping_interval=self.settings.ws_ping_interval,
            ws_ping_timeout=self.settings.ws_ping_timeout,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as error:  # surfaced by start()/stop() in the test thread
            self.error = error

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if self.error is not None or not self._thread.is_alive():
                self._socket.close()
                raise RuntimeError(f"uvicorn did not start: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {START_TIMEOUT_S}s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        self._socket.close()
        if self._thread.is_alive():
            raise TimeoutError(f"uvicorn did not stop within {STOP_TIMEOUT_S}s")

    @property
    def app_state(self) -> dict[str, object]:
        """The lifespan state, for tests that inspect the hub (read-only use)."""
        lifespan = getattr(self._server, "lifespan", None)
        state = lifespan.state if lifespan is not None else {}
        return dict(state)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
