"""The application factory: the route table, and a lifespan that builds and tears down state."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from chat.auth import pages as account_pages
from chat.auth import routes as accounts
from chat.auth import sso_routes
from chat.auth.csrf import CrossSiteRequestGuard
from chat.auth.middleware import AuthenticationMiddleware
from chat.auth.oidc import OidcClient
from chat.auth.passwords import PasswordHashing
from chat.auth.revocations import Revocations
from chat.auth.service import AccountService
from chat.auth.sso import SingleSignOn
from chat.auth.throttle import SignInThrottle
from chat.broadcast.base import Envelope
from chat.broadcast.factory import create_backend
from chat.broadcast.hub import Hub
from chat.conversation import routes as conversation
from chat.conversation.service import ConversationService
from chat.db import create_engine, create_sessionmaker
from chat.events import routes as events
from chat.headers import SecurityHeadersMiddleware
from chat.metrics import MetricsMisconfigured, create_metrics
from chat.migrate import SchemaNotAtHead, database_location, prepare_schema
from chat.ratelimit import ConnectionLimiter, KeyedLimiter, Rate
from chat.rendering import MessageRenderer, create_environment
from chat.requestmetrics import RequestMetricsMiddleware
from chat.resources import static_dir, templates_dir
from chat.rooms import routes as room_api
from chat.rooms.audit import SubscriptionAudit
from chat.rooms.directory import RoomDirectory
from chat.rooms.service import RoomService
from chat.routes import api, pages
from chat.routes import metrics as metrics_route
from chat.routes.chatsocket import chat_socket
from chat.schemas import Limits
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
        sessionmaker = create_sessionmaker(engine)
        service = ChatService(
            sessionmaker=sessionmaker,
            backend=backend,
            renderer=MessageRenderer(environment),
            directory=RoomDirectory(sessionmaker),
            guest_access=settings.guest_access,
            metrics=metrics,
        )
        rooms = RoomService(
            sessionmaker=sessionmaker,
            guest_access=settings.guest_access,
            publish=service.publish_events,
        )
        talk = ConversationService(
            sessionmaker=sessionmaker,
            chat=service,
            limits=Limits.from_settings(settings),
            edit_window_seconds=settings.edit_window_seconds,
        )
        revocations = Revocations(
            hub=hub, backend=backend, recheck_seconds=settings.auth_recheck_seconds
        )
        hashing = PasswordHashing()
        accounts = AccountService(
            sessionmaker=sessionmaker,
            hashing=hashing,
            session_days=settings.session_days,
            registration=settings.registration,
            on_revoked=revocations.publish,
            on_created=rooms.join_default_rooms,
        )
        sso = _single_sign_on(settings, sessionmaker, accounts)

        def on_changes(envelopes: Sequence[Envelope]) -> None:
            service.on_changes(envelopes)  # forget renderings of edited and deleted messages
            hub.deliver(envelopes)

        await backend.start(on_changes, on_signal=revocations.on_signal, source=service)
        service.start()
        revocations.start(accounts.still_valid)
        audit = SubscriptionAudit(hub=hub, rooms=rooms, interval=settings.auth_recheck_seconds)
        audit.start()
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
                rooms=rooms,
                conversation=talk,
                accounts=accounts,
                sso=sso,
                throttle=SignInThrottle(),
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
            await audit.stop()
            await revocations.stop()
            if sso is not None:
                await sso.aclose()
            await service.stop()
            await backend.stop()
            hashing.close()
            await engine.dispose()
            metrics.close()

    middleware = [
        # Outermost: it sees the lifespan's failure before uvicorn prints a traceback.
        Middleware(StartupRefusalMiddleware, refusals=(SchemaNotAtHead, MetricsMisconfigured)),
        Middleware(SecurityHeadersMiddleware),
        # Who is speaking, for every request and handshake; then no cross-site changes.
        Middleware(AuthenticationMiddleware),
        Middleware(CrossSiteRequestGuard),
    ]
    # Off, metrics cost nothing per request: no middleware, and /metrics answers 404. On, it
    # sits outside authentication, so requests refused there (401, 403) are counted too.
    if settings.metrics:
        middleware.insert(1, Middleware(RequestMetricsMiddleware))
    return Starlette(
        routes=_routes(),
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )


def _single_sign_on(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], accounts: AccountService
) -> SingleSignOn | None:
    if not settings.oidc_enabled:
        return None
    # Settings.validate made sure the three come together.
    assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
    # Nothing is fetched yet: the provider may be down while the chat starts.
    client = OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
    )
    return SingleSignOn(client=client, sessionmaker=sessionmaker, accounts=accounts)


def _routes() -> list[Route | WebSocketRoute | Mount]:
    return [
        Route("/", pages.index, methods=["GET"], name="index"),
        Route("/a/message/new", pages.post_message_form, methods=["POST"], name="post_form"),
        *_account_pages(),
        Route("/api/messages", api.MessagesEndpoint, name="messages"),
        *_room_routes(),
        Route("/api/events", events.catch_up, methods=["GET"], name="events"),
        *_account_routes(),
        Route("/api/openapi.json", api.openapi_document, methods=["GET"], name="openapi"),
        Route("/healthz", api.healthz, methods=["GET"], name="healthz"),
        Route("/readyz", api.readyz, methods=["GET"], name="readyz"),
        Route("/metrics", metrics_route.metrics, methods=["GET"], name="metrics"),
        WebSocketRoute("/chatsocket", chat_socket, name="chatsocket"),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]


def _room_routes() -> list[Route]:
    return [
        Route("/api/rooms", room_api.list_rooms, methods=["GET"], name="rooms"),
        Route("/api/rooms", room_api.create_room, methods=["POST"], name="create_room"),
        Route("/api/rooms/{room}", room_api.show_room, methods=["GET"], name="room"),
        Route("/api/rooms/{room}", room_api.update_room, methods=["PATCH"], name="update_room"),
        Route("/api/rooms/{room}/messages", api.RoomMessagesEndpoint, name="room_messages"),
        Route("/api/rooms/{room}/members", room_api.list_members, methods=["GET"], name="members"),
        Route(
            "/api/rooms/{room}/members/{username}",
            room_api.add_member,
            methods=["PUT"],
            name="member",
        ),
        Route(
            "/api/rooms/{room}/members/{username}",
            room_api.remove_member,
            methods=["DELETE"],
            name="remove_member",
        ),
        Route("/api/rooms/{room}/read", room_api.mark_read, methods=["POST"], name="read"),
        *_message_routes(),
        Route("/api/dms", room_api.start_direct_message, methods=["POST"], name="dms"),
    ]


def _message_routes() -> list[Route]:
    one = "/api/rooms/{room}/messages/{message_id}"
    return [
        Route(one, conversation.show_message, methods=["GET"], name="message"),
        Route(one, conversation.edit_message, methods=["PATCH"], name="edit_message"),
        Route(one, conversation.delete_message, methods=["DELETE"], name="delete_message"),
        Route(f"{one}/history", conversation.message_history, methods=["GET"], name="versions"),
        Route(
            f"{one}/reactions/{{emoji}}",
            conversation.add_reaction,
            methods=["PUT"],
            name="reaction",
        ),
        Route(
            f"{one}/reactions/{{emoji}}",
            conversation.remove_reaction,
            methods=["DELETE"],
            name="remove_reaction",
        ),
    ]


def _account_pages() -> list[Route]:
    return [
        Route("/login", account_pages.login_page, methods=["GET"], name="login"),
        Route("/login", account_pages.login, methods=["POST"], name="login_form"),
        Route("/register", account_pages.register_page, methods=["GET"], name="register"),
        Route("/register", account_pages.register, methods=["POST"], name="register_form"),
        Route("/logout", account_pages.logout_page, methods=["GET"], name="logout"),
        Route("/logout", account_pages.logout, methods=["POST"], name="logout_form"),
        Route("/account", account_pages.account_page, methods=["GET"], name="account"),
        Route(
            "/account/logout-everywhere",
            account_pages.logout_everywhere,
            methods=["POST"],
            name="logout_everywhere",
        ),
        Route("/account/tokens", account_pages.create_token, methods=["POST"], name="token_form"),
        Route(
            "/account/tokens/{token_id:int}/revoke",
            account_pages.revoke_token,
            methods=["POST"],
            name="revoke_token_form",
        ),
    ]


def _account_routes() -> list[Route]:
    return [
        Route("/api/auth/register", accounts.register, methods=["POST"], name="register_api"),
        Route("/api/auth/login", accounts.login, methods=["POST"], name="login_api"),
        Route("/api/auth/logout", accounts.logout, methods=["POST"], name="logout_api"),
        Route(
            "/api/auth/logout-everywhere",
            accounts.logout_everywhere,
            methods=["POST"],
            name="logout_everywhere_api",
        ),
        Route("/api/me", accounts.me, methods=["GET"], name="me"),
        Route("/auth/oidc/login", sso_routes.oidc_login, methods=["GET"], name="oidc_login"),
        Route(
            "/auth/oidc/callback", sso_routes.oidc_callback, methods=["GET"], name="oidc_callback"
        ),
        Route("/api/tokens", accounts.list_tokens, methods=["GET"], name="tokens"),
        Route("/api/tokens", accounts.create_token, methods=["POST"], name="create_token"),
        Route("/api/tokens/{token_id}", accounts.revoke_token, methods=["DELETE"], name="token"),
        Route("/api/invites", accounts.list_invites, methods=["GET"], name="invites"),
        Route("/api/invites", accounts.create_invite, methods=["POST"], name="create_invite"),
        Route(
            "/api/invites/{invite_id}", accounts.revoke_invite, methods=["DELETE"], name="invite"
        ),
        Route("/api/users", accounts.list_users, methods=["GET"], name="users"),
        Route("/api/users/{username}", accounts.update_user, methods=["PATCH"], name="user"),
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
