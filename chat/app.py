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

from chat.auth import pages as account_pages
from chat.auth import routes as accounts
from chat.auth import sso_routes
from chat.auth.csrf import CrossSiteRequestGuard
from chat.auth.middleware import AuthenticationMiddleware
from chat.conversation import routes as conversation
from chat.events import routes as events
from chat.headers import SecurityHeadersMiddleware
from chat.lifecycle import running
from chat.metrics import MetricsMisconfigured
from chat.migrate import SchemaNotAtHead
from chat.realtime import routes as presence_api
from chat.rendering import create_environment
from chat.requestmetrics import RequestMetricsMiddleware
from chat.resources import static_dir, templates_dir
from chat.rooms import routes as room_api
from chat.routes import api
from chat.routes import metrics as metrics_route
from chat.routes.chatsocket import chat_socket
from chat.search import routes as search
from chat.settings import Settings
from chat.startup import StartupRefusalMiddleware
from chat.state import AppState
from chat.web import message_forms, room_forms, room_page

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app. With no settings they are read from the CHAT_* environment variables."""
    settings = settings or Settings.from_env()
    environment = create_environment(templates_dir())
    templates = Jinja2Templates(env=environment)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        async with running(settings, environment, templates) as state:
            yield state

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
        routes=_one_route_per_path(_routes()),
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )


def _routes() -> list[Route | WebSocketRoute | Mount]:
    return [
        Route("/", room_page.index, methods=["GET"], name="index"),
        Route(
            "/a/message/new", message_forms.post_message_form, methods=["POST"], name="post_form"
        ),
        *_room_pages(),
        *_account_pages(),
        Route("/api/messages", api.MessagesEndpoint, name="messages"),
        *_room_routes(),
        Route("/api/events", events.catch_up, methods=["GET"], name="events"),
        Route("/api/search", search.search_api, methods=["GET"], name="search_api"),
        Route("/search", search.search_page, methods=["GET"], name="search"),
        *_account_routes(),
        Route("/api/openapi.json", api.openapi_document, methods=["GET"], name="openapi"),
        Route("/healthz", api.healthz, methods=["GET"], name="healthz"),
        Route("/readyz", api.readyz, methods=["GET"], name="readyz"),
        Route("/metrics", metrics_route.metrics, methods=["GET"], name="metrics"),
        WebSocketRoute("/chatsocket", chat_socket, name="chatsocket"),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]


def _room_pages() -> list[Route]:
    """The rooms without JavaScript: pages (GET) and their forms (POST, then 303)."""
    room = "/r/{room}"
    one = f"{room}/m/{{message_id}}"
    return [
        Route(room, room_page.room_page, methods=["GET"], name="room_page"),
        Route(f"{room}/messages", message_forms.post_room_message, methods=["POST"]),
        Route(one, room_page.message_page, methods=["GET"], name="message_page"),
        Route(f"{one}/edit", message_forms.edit_page, methods=["GET"], name="edit_page"),
        Route(f"{one}/edit", message_forms.edit_message, methods=["POST"], name="edit_form"),
        Route(f"{one}/delete", message_forms.delete_page, methods=["GET"], name="delete_page"),
        Route(f"{one}/delete", message_forms.delete_message, methods=["POST"], name="delete_form"),
        Route(f"{room}/join", room_forms.join_room, methods=["POST"], name="join_form"),
        Route(f"{room}/leave", room_forms.leave_room, methods=["POST"], name="leave_form"),
        Route(f"{room}/members", room_forms.members_page, methods=["GET"], name="members_page"),
        Route(f"{room}/members", room_forms.add_member, methods=["POST"], name="add_member_form"),
        Route("/rooms/new", room_forms.new_room_page, methods=["GET"], name="new_room_page"),
        Route("/rooms/new", room_forms.create_room, methods=["POST"], name="new_room_form"),
        Route("/dm", room_forms.find_person, methods=["GET"], name="find_person"),
        Route("/dm/{username}", room_forms.direct_message_page, methods=["GET"], name="dm_page"),
        Route("/dm/{username}", room_forms.start_direct_message, methods=["POST"], name="dm_form"),
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
        Route(
            "/api/rooms/{room}/presence",
            presence_api.room_presence,
            methods=["GET"],
            name="room_presence",
        ),
        Route("/api/presence", presence_api.everyone, methods=["GET"], name="presence"),
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


def _one_route_per_path(
    routes: list[Route | WebSocketRoute | Mount],
) -> list[Route | WebSocketRoute | Mount]:
    """The routes, with those that share a path (one per method) made one that dispatches by
    method. Starlette answers 405 from the first route whose path matches, and its `Allow`
    named only that route's methods (GET alone for /api/rooms, which takes POST too)."""
    by_path: dict[str, list[Route]] = {}
    for route in routes:
        if isinstance(route, Route) and route.methods is not None:
            by_path.setdefault(route.path, []).append(route)
    merged: list[Route | WebSocketRoute | Mount] = []
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            merged.append(route)
        elif (shared := by_path[route.path])[0] is route:
            merged.append(route if len(shared) == 1 else _dispatching(shared))
    return merged


def _dispatching(routes: list[Route]) -> Route:
    handlers = {method: route.endpoint for route in routes for method in route.methods or ()}

    async def by_method(request: Request) -> Response:
        response: Response = await handlers[request.method](request)
        return response

    first = routes[0]
    return Route(first.path, by_method, methods=sorted(handlers), name=first.name)


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
