"""`python -m chat`: read settings from CHAT_* variables and flags, then run uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence

import uvicorn

from chat.app import create_app
from chat.settings import Settings, SettingsError
from chat.transport import ChatWebSocketProtocol

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Run the cyclic garbage collector after 10,000 net allocations instead of 700. Every message
# allocates a few dozen short-lived objects (freed by reference counting, not by the collector),
# and at the default the collector ran every few messages (bench write: about +7 % stored
# messages/s). Larger thresholds bought little more and made the rarer older-generation
# collections long enough to show in the fan-out latency tail.
GC_THRESHOLDS = (10_000, 10, 10)


def parse_args(argv: Sequence[str] | None, defaults: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chat",
        description="Run the chat server. Every option also reads a CHAT_* environment variable.",
    )
    parser.add_argument("--host", default=defaults.host, help="CHAT_HOST (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="CHAT_PORT (default %(default)s)"
    )
    parser.add_argument(
        "--database-url",
        default=defaults.database_url,
        help="CHAT_DATABASE_URL (default %(default)s)",
    )
    parser.add_argument(
        "--broadcast-url",
        default=defaults.broadcast_url,
        help="CHAT_BROADCAST_URL (default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=defaults.log_level,
        choices=("critical", "error", "warning", "info", "debug"),
        help="CHAT_LOG_LEVEL (default %(default)s)",
    )
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-Proto/For from --forwarded-allow-ips (behind a reverse proxy)",
    )
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        defaults = Settings.from_env()
        args = parse_args(argv, defaults)
        settings = defaults.with_overrides(
            host=args.host,
            port=args.port,
            database_url=args.database_url,
            broadcast_url=args.broadcast_url,
            log_level=args.log_level,
        )
    except SettingsError as error:
        print(f"python -m chat: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(
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
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
    )
    return 0


def tune_garbage_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()  # what is alive at startup lives for good: keep it out of every collection


if __name__ == "__main__":
    sys.exit(main())
