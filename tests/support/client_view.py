"""A model of what a client keeps of the conversation, to compare with a fresh load.

It holds messages by id (body, edited, deleted, reactions, the quote they reply to) and applies
frames the way docs/protocol.md says: a `message` adds, a `message_updated` replaces the message
with that id, each `seq` once, a version never goes back (a catch-up frames each change with the
message as it is now, so several may carry the same version). Replies it already holds quote
their original: a client refreshes those quotes from the original it holds when the original
changes (the server sends the original, not every reply to it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.support.people import Frame

EXCERPT_CHARS = 120  # the quote of a reply: the start of the original (bodies here are shorter)


@dataclass
class ClientView:
    """What a client shows: every message it holds, by id."""

    messages: dict[int, Frame] = field(default_factory=dict)
    applied: set[int] = field(default_factory=set)
    changes: Counter[int] = field(default_factory=Counter)  # message id -> updates applied

    def load(self, history: list[Frame]) -> None:
        for message in history:
            self.messages[message["id"]] = message

    def apply(self, frame: Frame) -> None:
        seq = frame["seq"]
        assert seq not in self.applied, f"seq {seq} applied twice"
        self.applied.add(seq)
        if frame["type"] == "message":
            assert frame["id"] not in self.messages, f"message {frame['id']} added twice"
            self.messages[frame["id"]] = frame
        elif frame["type"] == "message_updated":
            new = frame["message"]
            old = self.messages.get(new["id"])
            assert old is not None, f"an update of message {new['id']}, never seen"
            self.changes[new["id"]] += 1
            # A catch-up frames every change with the message as it is now, and across nodes a
            # live frame can arrive after a replay that already carried a newer version: the
            # protocol says a lower version than the one shown is ignored (docs/protocol.md).
            if new["version"] < old["version"]:
                return
            self.messages[new["id"]] = new
            for message in self.messages.values():
                quote = message.get("reply_to")
                if quote is not None and quote["id"] == new["id"]:
                    quote["deleted"] = new["deleted"]
                    quote["excerpt"] = "" if new["deleted"] else new["body"][:EXCERPT_CHARS]

    def room(self, room: str) -> list[dict[str, Any]]:
        return [shown(m) for _, m in sorted(self.messages.items()) if m["room"] == room]


def shown(message: Frame) -> dict[str, Any]:
    """The parts of a message a person sees."""
    deleted_by = message.get("deleted_by")
    return {
        "id": message["id"],
        "body": message["body"],
        "edited_at": message["edited_at"],
        "deleted": message["deleted"],
        "deleted_by": deleted_by["id"] if deleted_by else None,
        "reactions": message["reactions"],
        "reply_to": message["reply_to"],
        "version": message["version"],
    }
