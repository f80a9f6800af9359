"""Integers from JSON: JSON Schema counts 42.0 as an integer, so the server does too."""

from __future__ import annotations

import pytest

from chat.errors import ClientError
from chat.schemas import json_integer, parse_message_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (42.0, 42),
        (-3.0, -3),
        (0, 0),
        (42.5, None),
        (True, None),
        ("42", None),
        (None, None),
    ],
)
def test_json_integer(value: object, expected: int | None) -> None:
    assert json_integer(value) == expected


def test_a_message_id_written_as_a_whole_float_is_that_id() -> None:
    assert parse_message_id(28386.0, "reply_to") == 28386
    with pytest.raises(ClientError) as refused:
        parse_message_id(0.5, "reply_to")
    assert refused.value.code == "invalid_reply_to"
