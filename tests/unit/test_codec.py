"""The broker line format: what one node publishes, every other node reads back exactly."""

from __future__ import annotations

import pytest

from chat.broadcast import codec
from chat.broadcast.base import Envelope
from chat.events.records import Effect


def test_changes_round_trip_with_their_topics_and_effects() -> None:
    envelopes = [
        Envelope(41, "r:1", '{"type":"message","body":"a b c"}'),
        Envelope(42, "r:7", '{"type":"member_joined"}', Effect("join", 3, 7)),
        Envelope(43, "r:7", '{"type":"member_left"}', Effect("leave", 3, 7)),
        Envelope(44, "u:3", '{"type":"read","room":"x y"}'),
    ]
    received = codec.decode(codec.batch(envelopes))
    assert [(r.seq, r.topic, r.effect, r.frame) for r in received] == [
        (e.seq, e.topic, e.effect, e.frame) for e in envelopes
    ]


def test_a_head_alone_announces_a_change_whose_frame_is_read_from_the_database() -> None:
    (received,) = codec.decode(codec.head(Envelope(9, "r:2", "too large", Effect("join", 1, 2))))
    assert (received.seq, received.topic, received.effect, received.frame) == (
        9,
        "r:2",
        Effect("join", 1, 2),
        None,
    )


def test_signals_travel_on_their_own_lines() -> None:
    payload = "!" + '{"kind":"revoked","user_id":7}' + "\n" + codec.line(Envelope(1, "r:1", "f"))
    signal, change = codec.decode(payload)
    assert signal.signal == '{"kind":"revoked","user_id":7}' and signal.frame is None
    assert change.seq == 1 and change.frame == "f"


@pytest.mark.parametrize(
    "line",
    ["", "x r:1 - {}", "1 room:1 - {}", "1 r:x - {}", "1 r:1 j:1 {}", "1 r:1 q:1:2 {}", "1"],
)
def test_malformed_lines_are_skipped(line: str) -> None:
    good = codec.line(Envelope(5, "r:1", "kept"))
    assert [r.seq for r in codec.decode(f"{line}\n{good}")] == [5]
