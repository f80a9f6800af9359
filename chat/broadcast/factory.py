"""Choose the fan-out backend by the scheme of CHAT_BROADCAST_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from chat.broadcast.base import BroadcastBackend
from chat.broadcast.memory import MemoryBackend


def create_backend(url: str) -> BroadcastBackend:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryBackend()
    raise ValueError(f"unsupported CHAT_BROADCAST_URL scheme {scheme!r} in {url!r}")
