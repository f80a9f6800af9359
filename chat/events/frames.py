"""How a change becomes the one frame every viewer receives (live, in a replay, in a catch-up).

A frame carries no viewer-specific data: "mine", "can I edit", "did I react" are decided by the
client from user ids, so each change is serialized once and the same bytes go to everyone.
"""

from __future__ import annotations

import json
from typing import Any

from chat.events.records import MESSAGE_CHANGES, EventRecord


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def message_frame(message: dict[str, Any], *, seq: int) -> str:
    """A new message: the message object (its `room` included) with its place in the log."""
    return dumps({**message, "seq": seq})


def change_frame(record: EventRecord, message: dict[str, Any]) -> str:
    """An edit, a delete or a reaction: the message in its state now (so applying the frames
    of a catch-up in order ends where a fresh page load starts)."""
    return dumps(
        {
            "type": "message_updated",
            "change": MESSAGE_CHANGES[record.kind],
            "room": message["room"],
            "seq": record.seq,
            "message": message,
        }
    )


def control_frame(record: EventRecord) -> str:
    """Any other change: `{"type": <kind>, "seq": <seq>, ...its data}` (data holds `room`)."""
    data: dict[str, Any] = json.loads(record.data) if record.data else {}
    return dumps({"type": record.kind, "seq": record.seq, **data})
