"""Counts HTTP responses by route, method and status (pure ASGI, like chat.headers).

Labels stay few whatever clients send: the matched route's template (`/api/messages`,
`/static`), never the raw path, and `unmatched` when no route matched (404s, slash redirects);
methods outside the standard ones count as `other`. WebSocket handshakes pass through untouched:
/chatsocket counts its connections and refusals itself. Scrapes of /metrics are counted like any
request (route `/metrics`), so a scraper refused with 401 shows up.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat.metrics import Metrics, NullMetrics

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics: Metrics | NullMetrics | None = scope.get("state", {}).get("metrics")
        if scope["type"] != "http" or metrics is None:
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        except Exception:
            if status is None:
                status = 500  # Starlette's ServerErrorMiddleware, outside this one, answers
            raise
        finally:
            # No status: the client left before an answer started; there is nothing to count.
            if status is not None:
                metrics.http_request(
                    route=route_template(scope), method=method_label(scope), status=status
                )


def route_template(scope: Scope) -> str:
    # Starlette's router puts the route it matched into the scope (a partial match too: 405).
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def method_label(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else "other"
