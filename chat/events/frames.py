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


def message_frame(message: str, *, seq: int) -> str:
    """A new message: the message object (its `room` included, serialized once: `message`)
    with its place in the log, as `{...the message, "seq": seq}`."""
    return f'{message[:-1]},"seq":{int(seq)}}}'


def change_frame(record: EventRecord, room: str, message: str) -> str:
    """An edit, a delete or a reaction: the message in its state now, serialized once
    (`message`), so applying the frames of a catch-up in order ends where a fresh page load
    starts."""
    head = dumps({"type": "message_updated", "change": MESSAGE_CHANGES[record.kind], "room": room})
    return f'{head[:-1]},"seq":{int(record.seq)},"message":{message}}}'


def control_frame(record: EventRecord) -> str:
    """Any other change: `{"type": <kind>, "seq": <seq>, ...its data}` (data holds `room`)."""
    data: dict[str, Any] = json.loads(record.data) if record.data else {}
    return dumps({"type": record.kind, "seq": record.seq, **data})
