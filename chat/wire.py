"""Outgoing frames that are serialized once and shared by every recipient.

A broadcast frame's text is encoded to UTF-8 once, and its finished WebSocket wire bytes are
kept per encoding (plain, or permessage-deflate with given parameters), so a message sent to a
thousand connections is framed and compressed once per encoding rather than once per reader.
`chat.transport` fills and reuses the cache; nothing else needs to know it exists.
"""

from __future__ import annotations

from collections.abc import Hashable

# The ASGI scope extension through which a connection accepts shared frames directly:
# {"send": Callable[[SharedFrame], bool], "flush": Callable[[], None]} (see chat.transport).
SHARED_SEND_EXTENSION = "chat.shared_send"


class SharedFrame:
    __slots__ = ("encoded", "text", "utf8")

    def __init__(self, text: str) -> None:
        self.text = text
        self.utf8 = text.encode()
        self.encoded: dict[Hashable, bytes] = {}

    def __repr__(self) -> str:
        return f"SharedFrame({self.text[:60]!r})"
