"""Search on SQLite: the FTS5 table `messages_fts` (chat.search.schema).

Newest first is FTS5's own rowid order read backwards, so a common word costs the page, not
the matches; relevance is bm25 over the newest `window` matches only. In trigram mode a term
of fewer than three characters (a two-character Chinese word) cannot use the index and is
matched with LIKE on the rows the other terms found (or, alone, by scanning newest first).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Select, column, func, literal_column, select, table

from chat.search import schema
from chat.search.index import (
    Scope,
    StatementIndex,
    id_bounds,
    messages,
    scoped,
    substring_conditions,
)
from chat.search.query import SearchQuery, Term

fts = table(schema.FTS_TABLE, column("rowid", Integer), column(schema.FTS_TABLE))
TRIGRAM_MIN_CHARS = 3


def quote(text: str) -> str:
    """An FTS5 string: whatever it holds is text to tokenize, never syntax."""
    return '"' + text.replace('"', '""') + '"'


def render_term(term: Term, *, trigram: bool) -> str:
    if term.kind == "prefix" and not trigram:  # a trigram match is a substring already
        return quote(term.text) + "*"
    return quote(term.text)


def render(query: SearchQuery, *, trigram: bool = False) -> str | None:
    """The MATCH expression: `("a" AND "b c" AND "d"*) NOT "e" NOT "f"`, or None when no
    term can use the index."""
    include = [t for t in query.include if _indexable(t, trigram)]
    if not include:
        return None
    exclude = [t for t in query.exclude if _indexable(t, trigram)]
    expression = "(" + " AND ".join(render_term(t, trigram=trigram) for t in include) + ")"
    return expression + "".join(" NOT " + render_term(t, trigram=trigram) for t in exclude)


def _indexable(term: Term, trigram: bool) -> bool:
    return not trigram or len(term.text) >= TRIGRAM_MIN_CHARS


class Fts5Index(StatementIndex):
    name = "sqlite-fts5"

    def __init__(self, *, trigram: bool) -> None:
        self.trigram = trigram

    def ranks(self, query: SearchQuery) -> bool:
        return render(query, trigram=self.trigram) is not None

    def statement(self, query: SearchQuery, scope: Scope, *, rank: bool) -> Select[Any]:
        expression = render(query, trigram=self.trigram)
        # Terms the index cannot take (trigram mode, short ones) are matched on the body.
        short = [t for t in query.include if not _indexable(t, self.trigram)]
        short_out = [t for t in query.exclude if not _indexable(t, self.trigram)]
        extra = substring_conditions(query, short, short_out, ilike=False)
        if expression is None:
            statement = select(messages.c.id.label("id")).where(*id_bounds(messages.c.id, scope))
            return scoped(statement.where(*extra), scope).order_by(messages.c.id.desc())
        columns: list[Any] = [messages.c.id.label("id")]
        if rank:
            columns.append(func.bm25(literal_column(schema.FTS_TABLE)).label("rank"))
        # FTS5 drives the join (its rowid order is the page order); messages is looked up by
        # primary key for the room, author, time and deleted filters.
        statement = (
            select(*columns)
            .select_from(fts.join(messages, messages.c.id == fts.c.rowid))
            .where(fts.c[schema.FTS_TABLE].op("MATCH")(expression))
            .where(*id_bounds(fts.c.rowid, scope), *extra)
        )
        return scoped(statement, scope).order_by(fts.c.rowid.desc())
