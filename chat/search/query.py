"""The search query language, parsed into a structure the index implementations render.

    words            every word must occur (whole tokens; case does not matter)
    "exact phrase"   the words next to each other, in this order
    word*            any word starting with `word` (at least two letters before the star)
    -word, -"a b"    leave out messages that have it
    from:username    only that account's messages
    in:room          only that room

User text never reaches the full-text engine as syntax: every term is quoted when rendered
(chat.search.sqlite_fts5, chat.search.postgres). What this module cannot make sense of is a
ClientError (400, `invalid_query`) that says what is wrong: unbalanced quotes, a star that does
not end a word, parentheses outside quotes, a query above MAX_QUERY_BYTES or MAX_TERMS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from chat.errors import ClientError
from chat.rooms.names import looks_like_room_name

MAX_QUERY_BYTES = 512
MAX_TERMS = 16
MAX_TERM_CHARS = 100
MIN_PREFIX_CHARS = 2

TermKind = Literal["word", "phrase", "prefix"]
# A letter or digit in any script: what every tokenizer keeps (underscore and marks are not).
_WORD_CHAR = re.compile(r"[^\W_]")
_USERNAME = re.compile(r"[a-z0-9_.\-]{1,32}")
_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')
_OPERATORS = ("from:", "in:")


def invalid(detail: str) -> ClientError:
    return ClientError("invalid_query", detail)


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # a word, a phrase's words, or a prefix's stem (without the star)
    kind: TermKind


@dataclass(frozen=True, slots=True)
class SearchQuery:
    include: tuple[Term, ...] = ()
    exclude: tuple[Term, ...] = ()
    author: str | None = None  # from:
    room: str | None = None  # in:

    @property
    def has_text(self) -> bool:
        return bool(self.include)


def parse_query(raw: str) -> SearchQuery:
    """The structured query, or ClientError(400) naming what is wrong with `raw`."""
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:
        raise invalid("the search is not valid text (a lone surrogate)") from None
    if size > MAX_QUERY_BYTES:
        raise invalid(f"a search is at most {MAX_QUERY_BYTES} bytes long")
    if "\x00" in raw:
        raise invalid("the search contains a NUL character")
    if raw.count('"') % 2:
        raise invalid('unbalanced quotes: close the "phrase" you opened')
    include: list[Term] = []
    exclude: list[Term] = []
    author: str | None = None
    room: str | None = None
    for count, match in enumerate(_TOKEN.finditer(raw), start=1):
        if count > MAX_TERMS:
            raise invalid(f"a search has at most {MAX_TERMS} terms")
        negated_phrase, phrase, bare = match.groups()
        if bare is not None and bare.lower().startswith("from:"):
            author = _once(author, _author(bare[5:]), "from:")
        elif bare is not None and bare.lower().startswith("in:"):
            room = _once(room, _room(bare[3:]), "in:")
        else:
            negated, term = _phrase(phrase, negated_phrase) if bare is None else _bare(bare)
            if term is not None:
                (exclude if negated else include).append(term)
    if not include and (exclude or (author is None and room is None)):
        raise invalid("nothing to search for: type at least one word (or from: / in:)")
    return SearchQuery(tuple(include), tuple(exclude), author, room)


def _once(current: str | None, value: str, operator: str) -> str:
    if current is not None and current != value:
        raise invalid(f"use {operator} at most once")
    return value


def _author(value: str) -> str:
    username = value.removeprefix("@").lower()
    if not _USERNAME.fullmatch(username):
        raise invalid(f"from: takes a username, not {value!r}")
    return username


def _room(value: str) -> str:
    name = value.removeprefix("#").lower()
    if not looks_like_room_name(name):
        raise invalid(f"in: takes a room name, not {value!r}")
    return name


def _bare(bare: str) -> tuple[bool, Term | None]:
    if '"' in bare:
        raise invalid(f"put a space before a quoted phrase: {bare!r}")
    negated = bare.startswith("-")
    word = bare[1:] if negated else bare
    if not word:
        raise invalid("a '-' must be followed by the word to leave out")
    return negated, _word(word)


def _phrase(text: str, negated: str) -> tuple[bool, Term | None]:
    return bool(negated), _phrase_term(text)


def _phrase_term(text: str) -> Term | None:
    words = " ".join(text.split())
    if len(words) > MAX_TERM_CHARS:
        raise invalid(f"a phrase is at most {MAX_TERM_CHARS} characters")
    if not _WORD_CHAR.search(words):
        return None  # only punctuation or emoji: nothing a tokenizer keeps
    return Term(words, "phrase")


def _word(word: str) -> Term | None:
    if len(word) > MAX_TERM_CHARS:
        raise invalid(f"a word is at most {MAX_TERM_CHARS} characters")
    if "(" in word or ")" in word:
        raise invalid(f'parentheses are not part of the search language; quote it: "{word}"')
    stem = word.removesuffix("*")
    if "*" in stem:
        raise invalid(f"a '*' can only end a word: {word!r}")
    if stem != word:
        if len(_WORD_CHAR.findall(stem)) < MIN_PREFIX_CHARS:
            raise invalid(
                f"a prefix needs at least {MIN_PREFIX_CHARS} letters before the '*': {word!r}"
            )
        return Term(stem, "prefix")
    if not _WORD_CHAR.search(word):
        return None
    return Term(word, "word")


__all__ = ["MAX_QUERY_BYTES", "MAX_TERMS", "SearchQuery", "Term", "invalid", "parse_query"]
