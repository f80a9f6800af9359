"""Property-based tests: no input makes the parser or the renderer fail in an undocumented way,
and rendered HTML never holds markup the input did not earn."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from chat.errors import ClientError
from chat.rendering import linkify
from chat.schemas import Limits, parse_history_query, parse_socket_frame
from tests.support.html_check import assert_only_safe_links

LIMITS = Limits(max_message_chars=200, max_author_chars=64, max_frame_bytes=4096)
KNOWN_CODES = {
    "frame_too_large",
    "invalid_json",
    "invalid_frame",
    "missing_body",
    "invalid_body",
    "empty_body",
    "body_too_long",
    "invalid_author",
    "invalid_client_id",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
frame_objects = st.fixed_dictionaries(
    {},
    optional={
        "body": json_values | st.text(max_size=300),
        "author": json_values,
        "client_id": json_values | st.text(max_size=80),
        "_xsrf": st.text(),
    },
)


def check_frame(text: str) -> None:
    try:
        draft = parse_socket_frame(text, LIMITS)
    except ClientError as error:
        assert error.code in KNOWN_CODES
        assert error.detail
        return
    assert draft.body.strip()
    assert len(draft.body) <= LIMITS.max_message_chars
    assert "\x00" not in draft.body
    draft.body.encode("utf-8")  # storable
    assert draft.author is None or 0 < len(draft.author) <= LIMITS.max_author_chars
    assert draft.client_id is None or 0 < len(draft.client_id) <= 64


@given(st.text())
def test_any_text_frame_parses_or_gets_a_documented_error(text: str) -> None:
    check_frame(text)


@given(frame_objects)
def test_any_json_object_parses_or_gets_a_documented_error(frame: dict[str, object]) -> None:
    check_frame(json.dumps(frame))


@given(json_values)
def test_any_json_value_parses_or_gets_a_documented_error(value: object) -> None:
    check_frame(json.dumps(value))


url_ish = st.from_regex(
    r"(https?://|www\.|javascript:|data:)[a-z0-9.\-/?&=#()'\"<>`:%]{0,30}", fullmatch=True
)
hostile_text = st.lists(
    st.text(max_size=20)
    | url_ish
    | st.sampled_from(["<", ">", '"', "'", "&", "<script>", "&amp;"]),
    max_size=12,
).map("".join)


@given(hostile_text)
def test_rendered_html_shows_the_text_and_only_safe_links(text: str) -> None:
    assert_only_safe_links(str(linkify(text)), text)


@given(
    st.dictionaries(
        st.sampled_from(["limit", "before", "after", "x"]),
        st.lists(st.text(), min_size=1, max_size=3),
    )
)
def test_history_parameters_parse_or_get_a_documented_error(params: dict[str, list[str]]) -> None:
    try:
        query = parse_history_query(params, default_limit=50, max_limit=200)
    except ClientError as error:
        assert error.code in {
            "invalid_parameter",
            "duplicate_parameter",
            "conflicting_cursors",
            "unknown_parameter",
        }
        return
    assert 1 <= query.limit <= 200
    assert query.before is None or query.after is None
