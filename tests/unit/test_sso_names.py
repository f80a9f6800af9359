"""Usernames made from what an identity provider calls someone (chat.auth.names)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.auth.names import numbered_username, parse_username, username_from_hint
from chat.models import MAX_USERNAME_CHARS


@pytest.mark.parametrize(
    ("hint", "username"),
    [
        ("ada", "ada"),
        ("Ada.Lovelace", "ada.lovelace"),
        ("Ada Lovelace", "ada-lovelace"),
        ("  Zoë   Ångström ", "zoe-angstrom"),
        ("ada@example.org", "ada-example.org"),
        ("--ada--", "ada"),
        ("日本語", "user"),
        ("", "user"),
        (None, "user"),
        ("x" * 40, "x" * MAX_USERNAME_CHARS),
    ],
)
def test_a_hint_becomes_a_well_formed_username(hint: str | None, username: str) -> None:
    assert username_from_hint(hint) == username


def test_numbered_names_keep_their_suffix_within_the_limit() -> None:
    assert numbered_username("ada", 1) == "ada"
    assert numbered_username("ada", 2) == "ada-2"
    long = "y" * MAX_USERNAME_CHARS
    assert numbered_username(long, 12) == "y" * (MAX_USERNAME_CHARS - 3) + "-12"


@given(st.text(max_size=80), st.integers(min_value=1, max_value=10**9))
def test_every_hint_and_number_gives_a_valid_username(hint: str, number: int) -> None:
    made = numbered_username(username_from_hint(hint), number)
    assert parse_username(made) == made
