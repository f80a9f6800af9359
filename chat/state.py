"""The typed state the lifespan builds once and every request reads."""

from __future__ import annotations

from typing import TypedDict, cast

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from starlette.templating import Jinja2Templates

from chat.auth.service import AccountService
from chat.auth.sso import SingleSignOn
from chat.auth.throttle import SignInThrottle
from chat.broadcast.base import BroadcastBackend
from chat.broadcast.hub import Hub
from chat.conversation.service import ConversationService
from chat.metrics import Metrics, NullMetrics
from chat.ratelimit import ConnectionLimiter, KeyedLimiter
from chat.realtime.presence import Presence
from chat.realtime.typing import Typing
from chat.rooms.service import RoomService
from chat.search.service import SearchService
from chat.services import ChatService
from chat.settings import Settings


class AppState(TypedDict):
    settings: Settings
    engine: AsyncEngine
    backend: BroadcastBackend
    hub: Hub
    service: ChatService
    rooms: RoomService
    conversation: ConversationService
    search: SearchService
    typing: Typing
    presence: Presence
    accounts: AccountService
    sso: SingleSignOn | None  # None unless CHAT_OIDC_ISSUER is set
    throttle: SignInThrottle
    templates: Jinja2Templates
    schema_head: str  # the Alembic revision this code needs; readiness compares the database's
    connections: ConnectionLimiter
    post_limiter: KeyedLimiter
    metrics: Metrics | NullMetrics


def app_state(connection: HTTPConnection) -> AppState:
    # The ASGI server hands every request a shallow copy of what the lifespan yielded.
    return cast(AppState, connection.scope["state"])
