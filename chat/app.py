"""The application factory: the route table, and a lifespan that builds and tears down state."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from chat.broadcast.factory import create_backend
from chat.broadcast.hub import Hub
from chat.db import create_engine, create_sessionmaker
from chat.headers import SecurityHeadersMiddleware
from chat.metrics import MetricsMisconfigured, create_metrics
from chat.migrate import SchemaNotAtHead, database_location, prepare_schema
from chat.ratelimit import ConnectionLimiter, KeyedLimiter, Rate
from chat.rendering import MessageRenderer, create_environment
from chat.requestmetrics import RequestMetricsMiddleware
from chat.resources import static_dir, templates_dir
from chat.routes import api, pages
from chat.routes import metrics as metrics_route
from chat.routes.chatsocket import chat_socket
from chat.services import ChatService
from chat.settings import Settings
from chat.startup import StartupRefusalMiddleware
from chat.state import AppState

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app. With no settings they are read from the CHAT_* environment variables."""
    settings = settings or Settings.from_env()
    environment = create_environment(templates_dir())
    templates = Jinja2Templates(env=environment)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        # First: a misconfigured metrics directory refuses the start before anything is open.
        metrics = create_metrics(
            enabled=settings.metrics, multiprocess_dir=settings.prometheus_multiproc_dir
        )
        engine = create_engine(settings)
        try:
            schema = await prepare_schema(engine, migrate=settings.migrate_on_start)
        except BaseException:
            await engine.dispose()
            metrics.close()
            raise
        if settings.metrics:
            logger.info(
                "metrics at /metrics (%s, %s)",
                "bearer token required" if settings.metrics_token else "no token",
                f"workers' files in {settings.prometheus_multiproc_dir}"
                if settings.prometheus_multiproc_dir
                else "this process",
            )
        hub = Hub(settings.send_queue_size, metrics=metrics)
        backend = create_backend(
            settings.broadcast_url, channel=settings.broadcast_channel, metrics=metrics
        )
        service = ChatService(
            sessionmaker=create_sessionmaker(engine),
            backend=backend,
            renderer=MessageRenderer(environment),
            metrics=metrics,
        )
        await backend.start(hub.deliver, source=service)
        service.start()
        logger.info(
            "chat ready: database %s (schema %s), broadcast %s",
            database_location(settings.database_url),
            schema.head,
            _redact(settings.broadcast_url),
        )
        try:
            yield AppState(
                settings=settings,
                engine=engine,
                backend=backend,
                hub=hub,
                service=service,
                templates=templates,
                schema_head=schema.head,
                connections=ConnectionLimiter(
                    total=settings.max_connections,
                    per_address=settings.max_connections_per_address,
                ),
                post_limiter=KeyedLimiter(
                    Rate(per_second=settings.post_rate_per_second, burst=settings.post_rate_burst)
                ),
                metrics=metrics,
            )
        finally:
            await service.stop()
            await backend.stop()
            await engine.dispose()
            metrics.close()

    middleware = [
        # Outermost: it sees the lifespan's failure before uvicorn prints a traceback.
        Middleware(StartupRefusalMiddleware, refusals=(SchemaNotAtHead, MetricsMisconfigured)),
        Middleware(SecurityHeadersMiddleware),
    ]
    # Off, metrics cost nothing per request: no middleware, and /metrics answers 404.
    if settings.metrics:
        middleware.insert(1, Middleware(RequestMetricsMiddleware))
    return Starlette(
        routes=_routes(),
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )


def _routes() -> list[Route | WebSocketRoute | Mount]:
    return [
        Route("/", pages.index, methods=["GET"], name="index"),
        Route("/a/message/new", pages.post_message_form, methods=["POST"], name="post_form"),
        Route("/api/messages", api.MessagesEndpoint, name="messages"),
        Route("/api/openapi.json", api.openapi_document, methods=["GET"], name="openapi"),
        Route("/healthz", api.healthz, methods=["GET"], name="healthz"),
        Route("/readyz", api.readyz, methods=["GET"], name="readyz"),
        Route("/metrics", metrics_route.metrics, methods=["GET"], name="metrics"),
        WebSocketRoute("/chatsocket", chat_socket, name="chatsocket"),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


def _redact(url: str) -> str:
    """Hide a password in a URL before it is logged."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{location}"
