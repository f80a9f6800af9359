"""Choose the fan-out backend by the scheme of CHAT_BROADCAST_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from chat.broadcast.base import BroadcastBackend, BroadcastMetrics
from chat.broadcast.memory import MemoryBackend
from chat.broadcast.relay import Relay

REDIS_SCHEMES = ("redis", "rediss")
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
# PostgreSQL truncates identifiers (and so LISTEN channels) beyond 63 bytes.
MAX_POSTGRES_CHANNEL_BYTES = 63


def create_backend(
    url: str, *, channel: str = "chat:messages", metrics: BroadcastMetrics | None = None
) -> BroadcastBackend:
    scheme = urlsplit(url).scheme
    if not channel:
        raise ValueError("CHAT_BROADCAST_CHANNEL must not be empty")
    if scheme == "memory":
        return MemoryBackend(metrics)
    # The drivers are optional extras, imported only by deployments that use them.
    if scheme in REDIS_SCHEMES:
        from chat.broadcast.redis import RedisTransport

        return Relay(RedisTransport(url, channel=channel), metrics=metrics)
    if scheme in POSTGRES_SCHEMES:
        from chat.broadcast.postgres import PostgresTransport

        if len(channel.encode()) > MAX_POSTGRES_CHANNEL_BYTES:
            raise ValueError(
                f"CHAT_BROADCAST_CHANNEL {channel!r} is longer than PostgreSQL's "
                f"{MAX_POSTGRES_CHANNEL_BYTES}-byte identifier limit"
            )
        return Relay(PostgresTransport(url, channel=channel), metrics=metrics)
    raise ValueError(f"unsupported CHAT_BROADCAST_URL scheme {scheme!r} in {url!r}")
