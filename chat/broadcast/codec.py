"""The one line format every broker carries (Redis pub/sub and PostgreSQL NOTIFY alike).

A published batch is lines joined by "\\n" (JSON never holds a raw newline):

* a change: `<seq> <topic> <effect> <frame>`, where effect is `-`, `j:<user>:<room>` /
  `l:<user>:<room>` (chat.events.records.Effect) or `p:<message id>` (forget renderings of
  that message); a receiver routes it without parsing the frame, and skips a topic none of its
  sockets wants;
* a change whose frame does not fit the transport: `<seq> <topic> <effect>` alone; receivers
  read the frame from the database;
* a signal: `!<text>` (chat.broadcast.base.SIGNAL_MARK).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from chat.broadcast.base import SIGNAL_MARK, Envelope
from chat.broadcast.relay import Received
from chat.events.records import Effect, parse_topic

logger = logging.getLogger(__name__)

_NO_EFFECT = "-"


def head(envelope: Envelope) -> str:
    if envelope.effect is not None:
        effect = envelope.effect.encode()
    elif envelope.purge is not None:
        effect = f"p:{envelope.purge}"
    else:
        effect = _NO_EFFECT
    return f"{envelope.seq} {envelope.topic} {effect}"


def line(envelope: Envelope) -> str:
    return f"{head(envelope)} {envelope.frame}"


def batch(envelopes: Sequence[Envelope]) -> str:
    return "\n".join(line(envelope) for envelope in envelopes)


def decode(payload: str) -> list[Received]:
    received = []
    for text in payload.split("\n"):
        if text.startswith(SIGNAL_MARK):
            received.append(Received(0, None, signal=text[len(SIGNAL_MARK) :]))
            continue
        item = _decode_change(text)
        if item is None:
            logger.warning("ignoring a malformed line from the broker: %r", text[:80])
        else:
            received.append(item)
    return received


def _decode_change(text: str) -> Received | None:
    parts = text.split(" ", 3)
    if len(parts) < 3 or not parts[0].isdigit() or parse_topic(parts[1]) is None:
        return None
    effect = None
    purge = None
    if parts[2].startswith("p:") and parts[2][2:].isdigit():
        purge = int(parts[2][2:])
    elif parts[2] != _NO_EFFECT:
        effect = Effect.decode(parts[2])
        if effect is None:
            return None
    frame = parts[3] if len(parts) == 4 else None
    return Received(int(parts[0]), frame, topic=parts[1], effect=effect, purge=purge)
