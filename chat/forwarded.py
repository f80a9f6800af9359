"""Proxy headers (X-Forwarded-For, X-Forwarded-Proto) without losing who actually connected.

uvicorn's proxy-headers layer replaces `scope["client"]` with the address a trusted proxy
forwarded. That is right for logs and rate limits, and wrong for one question: did this request
come *from* a trusted proxy (CHAT_TRUSTED_PROXIES, chat.auth.middleware)? After the rewrite the
client is the person behind the proxy, never the proxy, so an honest proxy's user header would be
ignored; and with `--forwarded-allow-ips '*'` anyone could name a proxy's address in
X-Forwarded-For and be taken for it. `behind_proxy` therefore records the connecting address
under `scope["chat.peer"]` before uvicorn's layer runs; `chat serve --proxy-headers` uses it
instead of uvicorn's own `proxy_headers` option.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PEER_KEY = "chat.peer"


class KeepPeerAddress:
    """Puts the address that connected on the scope before anything rewrites `client`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            scope.setdefault(PEER_KEY, client[0] if client else "")
        await self.app(scope, receive, send)


def behind_proxy(app: ASGIApp, forwarded_allow_ips: str) -> ASGIApp:
    """`app` with proxy headers honoured from `forwarded_allow_ips`, the peer kept."""
    return KeepPeerAddress(ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips))  # type: ignore[arg-type]


def peer_address(scope: Scope) -> str:
    """The address that opened the connection: the proxy's, when there is one."""
    recorded = scope.get(PEER_KEY)
    if isinstance(recorded, str):
        return recorded
    client = scope.get("client")
    return str(client[0]) if client else ""
