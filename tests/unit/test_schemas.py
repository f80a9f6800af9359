from __future__ import annotations

import json

import pytest

from chat.schemas import (
    MAX_CURSOR,
    ClientError,
    Draft,
    Limits,
    parse_draft,
    parse_history_query,
    parse_socket_frame,
)

LIMITS = Limits(max_message_chars=20, max_author_chars=8, max_frame_bytes=200)


def error_code(text: str) -> str:
    with pytest.raises(ClientError) as caught:
        parse_socket_frame(text, LIMITS)
    return caught.value.code


def test_tornado_frame_with_xsrf_is_accepted() -> None:
    draft = parse_socket_frame(json.dumps({"body": "hi", "_xsrf": "2|abc"}), LIMITS)
    assert draft == Draft(body="hi", author=None, client_id=None)


def test_full_frame_is_parsed() -> None:
    frame = {"body": " hi ", "author": "  ada   lovelace ", "client_id": "k-1"}
    limits = Limits(max_message_chars=20, max_author_chars=12, max_frame_bytes=200)
    draft = parse_socket_frame(json.dumps(frame), limits)
    # The body is stored as typed; the author's whitespace is folded before its length is checked.
    assert draft == Draft(body=" hi ", author="ada lovelace", client_id="k-1")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "invalid_json"),
        ("{", "invalid_json"),
        ("", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('"body"', "invalid_frame"),
        ("null", "invalid_frame"),
        ("42", "invalid_frame"),
        ("{}", "missing_body"),
        ('{"text": "hi"}', "missing_body"),
        ('{"body": 5}', "invalid_body"),
        ('{"body": null}', "invalid_body"),
        ('{"body": ["a"]}', "invalid_body"),
        ('{"body": {"a": 1}}', "invalid_body"),
        ('{"body": "a\\u0000b"}', "invalid_body"),
        ('{"body": "\\ud800"}', "invalid_body"),
        ('{"body": ""}', "empty_body"),
        ('{"body": "   \\n\\t "}', "empty_body"),
        ('{"body": "' + "x" * 21 + '"}', "body_too_long"),
        ('{"body": "hi", "author": 7}', "invalid_author"),
        ('{"body": "hi", "author": "' + "a" * 9 + '"}', "invalid_author"),
        ('{"body": "hi", "client_id": 7}', "invalid_client_id"),
        ('{"body": "hi", "client_id": ""}', "invalid_client_id"),
        ('{"body": "hi", "client_id": "' + "k" * 65 + '"}', "invalid_client_id"),
        ('{"body": "' + "x" * 300 + '"}', "frame_too_large"),
    ],
)
def test_bad_frames_have_precise_codes(text: str, code: str) -> None:
    assert error_code(text) == code


def test_body_at_the_limit_is_accepted() -> None:
    assert parse_socket_frame(json.dumps({"body": "x" * 20}), LIMITS).body == "x" * 20


def test_body_limit_counts_characters_not_bytes() -> None:
    assert parse_socket_frame(json.dumps({"body": "é" * 20}, ensure_ascii=False), LIMITS)


def test_errors_carry_the_client_id_when_it_was_valid() -> None:
    with pytest.raises(ClientError) as caught:
        parse_draft({"body": "", "client_id": "k-9"}, LIMITS)
    assert caught.value.client_id == "k-9"


def test_blank_author_means_anonymous() -> None:
    assert parse_draft({"body": "hi", "author": "   "}, LIMITS).author is None


def query(**params: str | list[str]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in params.items()}


def parse(params: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return parse_history_query(params, default_limit=50, max_limit=200)


def test_history_defaults_and_clamp() -> None:
    assert parse({}).limit == 50
    assert parse(query(limit="7")).limit == 7
    assert parse(query(limit="100000")).limit == 200
    assert parse(query(before="10")).before == 10
    assert parse(query(after="0")).after == 0
    assert parse(query(after=str(MAX_CURSOR))).after == MAX_CURSOR


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (query(limit="abc"), "invalid_parameter"),
        (query(limit="0"), "invalid_parameter"),
        (query(limit="-1"), "invalid_parameter"),
        (query(limit="1.5"), "invalid_parameter"),
        (query(limit=""), "invalid_parameter"),
        (query(before="0"), "invalid_parameter"),
        (query(before="-5"), "invalid_parameter"),
        (query(before=" 5"), "invalid_parameter"),
        (query(before="\uff15"), "invalid_parameter"),  # a full-width digit
        (query(after="1e3"), "invalid_parameter"),
        (query(after=str(MAX_CURSOR + 1)), "invalid_parameter"),
        (query(after="9" * 400), "invalid_parameter"),
        (query(after="1\x00"), "invalid_parameter"),
        (query(before="1", after="2"), "conflicting_cursors"),
        (query(limit=["1", "2"]), "duplicate_parameter"),
        (query(cursor="5"), "unknown_parameter"),
    ],
)
def test_bad_history_parameters(params: dict[str, list[str]], code: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse(params)
    assert caught.value.code == code
