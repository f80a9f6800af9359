"""What the server builds when it starts and takes down when it stops, in one place.

`running(settings, ...)` is the lifespan's body: it checks (or migrates) the schema, builds every
service from the settings, starts the background tasks, yields the typed state every request
reads, and on the way out stops everything in the reverse order (an exit stack).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import jinja2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.templating import Jinja2Templates

from chat.auth.oidc import OidcClient
from chat.auth.passwords import PasswordHashing
from chat.auth.recent_checks import RecentChecks
from chat.auth.revocations import Revocations
from chat.auth.service import AccountService
from chat.auth.sso import SingleSignOn
from chat.auth.throttle import SignInThrottle
from chat.broadcast.base import Envelope
from chat.broadcast.factory import create_backend
from chat.broadcast.hub import Hub
from chat.conversation.service import ConversationService
from chat.db import create_engine, create_sessionmaker
from chat.metrics import create_metrics
from chat.migrate import database_location, prepare_schema
from chat.ratelimit import ConnectionLimiter, KeyedLimiter, Rate
from chat.realtime.presence import Presence
from chat.realtime.typing import Typing
from chat.rendering import MessageRenderer
from chat.rooms.audit import SubscriptionAudit
from chat.rooms.directory import RoomDirectory
from chat.rooms.service import RoomService
from chat.schemas import Limits
from chat.search.index import open_index
from chat.search.service import SearchService
from chat.services import ChatService
from chat.settings import Settings
from chat.state import AppState

logger = logging.getLogger("chat.app")


@contextlib.asynccontextmanager
async def running(
    settings: Settings, environment: jinja2.Environment, templates: Jinja2Templates
) -> AsyncIterator[AppState]:
    async with contextlib.AsyncExitStack() as stack:
        # First: a misconfigured metrics directory refuses the start before anything is open.
        metrics = create_metrics(
            enabled=settings.metrics, multiprocess_dir=settings.prometheus_multiproc_dir
        )
        stack.callback(metrics.close)
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        schema = await prepare_schema(engine, migrate=settings.migrate_on_start)
        _log_metrics(settings)
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
        recent_checks = RecentChecks()  # socket handshakes' credential checks, shared
        revocations = Revocations(
            hub=hub,
            backend=backend,
            recheck_seconds=settings.auth_recheck_seconds,
            recent_checks=recent_checks,
        )
        hashing = PasswordHashing()
        stack.callback(hashing.close)
        accounts = AccountService(
            sessionmaker=sessionmaker,
            hashing=hashing,
            session_days=settings.session_days,
            registration=settings.registration,
            on_revoked=revocations.publish,
            on_created=rooms.join_default_rooms,
            recent_checks=recent_checks,
        )
        accounts.start()
        stack.push_async_callback(accounts.stop)
        sso = _single_sign_on(settings, sessionmaker, accounts)
        if sso is not None:
            stack.push_async_callback(sso.aclose)
        typing = Typing(hub=hub, backend=backend)
        presence = Presence(hub=hub, backend=backend, members_in=rooms.members_in)

        def on_signal(signal: str) -> None:
            revocations.on_signal(signal)
            typing.on_signal(signal)
            presence.on_signal(signal)

        def on_changes(envelopes: Sequence[Envelope]) -> None:
            service.on_changes(envelopes)  # forget renderings of edited and deleted messages
            rooms.on_changes(envelopes)  # forget the rooms of whoever joined or left
            hub.deliver(envelopes)

        await backend.start(on_changes, on_signal=on_signal, source=service)
        stack.push_async_callback(backend.stop)
        service.start()
        stack.push_async_callback(service.stop)  # before the backend: drained, then published
        revocations.start(accounts.still_valid)
        stack.push_async_callback(revocations.stop)
        audit = SubscriptionAudit(hub=hub, rooms=rooms, interval=settings.auth_recheck_seconds)
        audit.start()
        stack.push_async_callback(audit.stop)
        presence.start()
        stack.push_async_callback(presence.stop)
        typing.start()
        stack.push_async_callback(typing.stop)
        logger.info(
            "chat ready: database %s (schema %s), broadcast %s",
            database_location(settings.database_url),
            schema.head,
            _redact(settings.broadcast_url),
        )
        yield AppState(
            settings=settings,
            engine=engine,
            backend=backend,
            hub=hub,
            service=service,
            rooms=rooms,
            conversation=ConversationService(
                sessionmaker=sessionmaker,
                chat=service,
                limits=Limits.from_settings(settings),
                edit_window_seconds=settings.edit_window_seconds,
            ),
            search=SearchService(
                sessionmaker=sessionmaker,
                index=await open_index(engine),
                rooms=rooms,
                chat=service,
            ),
            typing=typing,
            presence=presence,
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


def _log_metrics(settings: Settings) -> None:
    if not settings.metrics:
        return
    logger.info(
        "metrics at /metrics (%s, %s)",
        "bearer token required" if settings.metrics_token else "no token",
        f"workers' files in {settings.prometheus_multiproc_dir}"
        if settings.prometheus_multiproc_dir
        else "this process",
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


def _redact(url: str) -> str:
    """Hide a password in a URL before it is logged."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{location}"


__all__ = ["running"]
