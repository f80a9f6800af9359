"""The highlighted excerpt of a search result: escaped here, on the server, with `<mark>` as
the only markup. Computed in Python from the body and the parsed query, so both engines and
both index modes highlight alike and no engine-made HTML ever reaches a page."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from chat.search.query import SearchQuery

SNIPPET_CHARS = 200
_LEAD_CHARS = 60
_TOKEN = re.compile(r"[^\W_]+")


def snippet(body: str, query: SearchQuery, *, trigram: bool = False) -> Markup:
    spans = _substring_spans(body, query) if trigram else _token_spans(body, query)
    start, end = _window(body, spans)
    parts: list[str] = ["…"] if start > 0 else []
    position = start
    for span_start, span_end in spans:
        if span_end <= start or span_start >= end:
            continue
        begin, finish = max(span_start, start), min(span_end, end)
        parts.append(str(escape(body[position:begin])))
        parts.append(f"<mark>{escape(body[begin:finish])}</mark>")
        position = finish
    parts.append(str(escape(body[position:end])))
    if end < len(body):
        parts.append("…")
    return Markup("".join(parts))


def _token_spans(body: str, query: SearchQuery) -> list[tuple[int, int]]:
    words: set[str] = set()
    prefixes: list[str] = []
    for term in query.include:
        tokens = [token.casefold() for token in _TOKEN.findall(term.text)]
        if term.kind == "prefix" and tokens:
            words.update(tokens[:-1])
            prefixes.append(tokens[-1])
        else:
            words.update(tokens)
    spans = []
    for match in _TOKEN.finditer(body):
        token = match.group().casefold()
        if token in words or any(token.startswith(prefix) for prefix in prefixes):
            spans.append(match.span())
    return spans


def _substring_spans(body: str, query: SearchQuery) -> list[tuple[int, int]]:
    lowered = body.lower()
    if len(lowered) != len(body):
        return []  # a character changed length when lowered: positions would not line up
    marked = [False] * len(body)
    for term in query.include:
        needle = term.text.lower()
        at = lowered.find(needle)
        while needle and at != -1:
            marked[at : at + len(needle)] = [True] * len(needle)
            at = lowered.find(needle, at + 1)
    spans: list[tuple[int, int]] = []
    for index, flag in enumerate(marked):
        if not flag:
            continue
        if spans and spans[-1][1] == index:
            spans[-1] = (spans[-1][0], index + 1)
        else:
            spans.append((index, index + 1))
    return spans


def _window(body: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    if len(body) <= SNIPPET_CHARS:
        return 0, len(body)
    first = spans[0][0] if spans else 0
    start = max(0, first - _LEAD_CHARS)
    if start > 0:
        space = body.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(body), start + SNIPPET_CHARS)
    if end < len(body):
        space = body.rfind(" ", start + SNIPPET_CHARS // 2, end)
        end = space if space != -1 else end
    return start, end
