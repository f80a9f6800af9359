"""`chat` (no command): check or migrate the schema, then serve with uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Iterator

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp

from chat.app import create_app
from chat.cli.database import add_database_url, database_problem, dispose, help_text
from chat.db import create_engine
from chat.forwarded import behind_proxy
from chat.logs import configure_logging
from chat.migrate import SchemaNotAtHead, prepare_schema
from chat.settings import LOG_FORMATS, LOG_LEVELS, Settings
from chat.transport import ChatWebSocketProtocol

logger = logging.getLogger("chat")

# Run the cyclic garbage collector after 10,000 net allocations instead of 700. Every message
# allocates a few dozen short-lived objects (freed by reference counting, not by the collector),
# and at the default the collector ran every few messages (bench write: about +7 % stored
# messages/s). Larger thresholds bought little more and made the rarer older-generation
# collections long enough to show in the fan-out latency tail.
GC_THRESHOLDS = (10_000, 10, 10)
GRACEFUL_SHUTDOWN_SECONDS = 10
EXIT_REFUSED = 1


def add_arguments(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    parser.add_argument("--host", default=defaults.host, help="CHAT_HOST (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="CHAT_PORT (default %(default)s)"
    )
    add_database_url(parser, defaults)
    parser.add_argument(
        "--broadcast-url",
        metavar="URL",
        default=defaults.broadcast_url,
        help=f"CHAT_BROADCAST_URL (now: {help_text(defaults.broadcast_url)})",
    )
    parser.add_argument(
        "--migrate",
        action="store_true",
        default=defaults.migrate_on_start,
        help="upgrade the database schema before serving; with several nodes starting at once "
        "one migrates and the others wait (CHAT_MIGRATE_ON_START)",
    )
    parser.add_argument(
        "--log-level",
        default=defaults.log_level,
        choices=LOG_LEVELS,
        help="CHAT_LOG_LEVEL (default %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        default=defaults.log_format,
        choices=LOG_FORMATS,
        help="CHAT_LOG_FORMAT: text for people, json (one object per line) for collectors",
    )
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-Proto/For from --forwarded-allow-ips (behind a reverse proxy); "
        "CHAT_TRUSTED_PROXIES is still checked against the connecting address",
    )
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1")


def run(args: argparse.Namespace, defaults: Settings) -> int:
    settings = defaults.with_overrides(
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        broadcast_url=args.broadcast_url,
        log_level=args.log_level,
        log_format=args.log_format,
        migrate_on_start=args.migrate,
    )
    configure_logging(level=settings.log_level, log_format=settings.log_format)
    refusal = asyncio.run(_schema_refusal(settings))
    if refusal is not None:
        logger.critical("%s", refusal)
        return EXIT_REFUSED
    # Migrated (or checked) above; the app only checks again.
    app: ASGIApp = create_app(settings.with_overrides(migrate_on_start=False))
    if args.proxy_headers:
        # Here rather than uvicorn's proxy_headers option: CHAT_TRUSTED_PROXIES is checked
        # against the address that connected, which uvicorn's layer would overwrite.
        app = behind_proxy(app, args.forwarded_allow_ips)
    tune_garbage_collector()
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            log_level=settings.log_level,
            ws_max_size=settings.max_protocol_frame_bytes,
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_timeout,
            ws=ChatWebSocketProtocol,
            ws_per_message_deflate=True,
            proxy_headers=False,  # applied above, when asked for
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    server.run()
    return 0 if server.started else EXIT_REFUSED


async def _schema_refusal(settings: Settings) -> str | None:
    """Why the server must not start on this database, or None: one line for the operator."""
    engine = create_engine(settings)
    try:
        await prepare_schema(engine, migrate=settings.migrate_on_start)
    except SchemaNotAtHead as error:
        return str(error)
    except (SQLAlchemyError, OSError) as error:
        return database_problem(settings.database_url, error)
    finally:
        await dispose(engine)
    return None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies of the
        # signal (status 143). A supervisor asked for a stop and got one: exit 0 instead.
        # Ctrl-C (SIGINT) keeps its conventional status.
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals = [
                    captured for captured in self._captured_signals if captured != signal.SIGTERM
                ]


def tune_garbage_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()  # what is alive at startup lives for good: keep it out of every collection
