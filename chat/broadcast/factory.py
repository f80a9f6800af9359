"""Choose the fan-out backend by the scheme of CHAT_BROADCAST_URL."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from chat.broadcast.base import SIGNAL_MARK, BroadcastBackend, BroadcastMetrics
from chat.broadcast.memory import MemoryBackend
from chat.broadcast.relay import BrokerUnavailable, Relay, Transport, describe

REDIS_SCHEMES = ("redis", "rediss")
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
# PostgreSQL truncates identifiers (and so LISTEN channels) beyond 63 bytes.
MAX_POSTGRES_CHANNEL_BYTES = 63
# How long a one-off signal may take to reach the broker, connecting included.
SIGNAL_TIMEOUT_S = 5.0


def create_backend(
    url: str, *, channel: str = "chat:messages", metrics: BroadcastMetrics | None = None
) -> BroadcastBackend:
    if not channel:
        raise ValueError("CHAT_BROADCAST_CHANNEL must not be empty")
    if urlsplit(url).scheme == "memory":
        return MemoryBackend(metrics)
    return Relay(_transport(url, channel=channel), metrics=metrics)


def crosses_processes(url: str) -> bool:
    """Whether a backend of this URL reaches other processes (a broker), unlike memory://."""
    return urlsplit(url).scheme in (*REDIS_SCHEMES, *POSTGRES_SCHEMES)


async def publish_signal_once(
    url: str, *, channel: str, signal: str, wait_at_most: float = SIGNAL_TIMEOUT_S
) -> None:
    """Publish one signal to every node listening on `channel` of the broker at `url`, from a
    process that is not a node (the `chat users` command): connect, publish, disconnect.

    Raises BrokerUnavailable when the broker cannot be reached within `wait_at_most` seconds, and
    ValueError for a URL without a broker (memory://) or a signal of more than one line.
    """
    if "\n" in signal:
        raise ValueError(f"a signal is one line, not {signal[:80]!r}")
    transport = _transport(url, channel=channel)
    try:
        async with asyncio.timeout(wait_at_most):
            await transport.publish_line(SIGNAL_MARK + signal)
    except TimeoutError as error:
        raise BrokerUnavailable(
            f"{transport.name} did not take the signal within {wait_at_most:g}s"
        ) from error
    except OSError as error:
        raise BrokerUnavailable(describe(error)) from error
    finally:
        await transport.shutdown()


def _transport(url: str, *, channel: str) -> Transport:
    scheme = urlsplit(url).scheme
    # The drivers are optional extras, imported only by deployments that use them.
    if scheme in REDIS_SCHEMES:
        from chat.broadcast.redis import RedisTransport

        return RedisTransport(url, channel=channel)
    if scheme in POSTGRES_SCHEMES:
        from chat.broadcast.postgres import PostgresTransport

        if len(channel.encode()) > MAX_POSTGRES_CHANNEL_BYTES:
            raise ValueError(
                f"CHAT_BROADCAST_CHANNEL {channel!r} is longer than PostgreSQL's "
                f"{MAX_POSTGRES_CHANNEL_BYTES}-byte identifier limit"
            )
        return PostgresTransport(url, channel=channel)
    if scheme == "memory":
        raise ValueError(f"CHAT_BROADCAST_URL {url!r} reaches no other process")
    raise ValueError(f"unsupported CHAT_BROADCAST_URL scheme {scheme!r} in {url!r}")
