"""Search on PostgreSQL: the GIN index on to_tsvector('simple', body) (chat.search.schema).

The query is rendered to tsquery text with every term quoted (`'a' & 'b c' & 'd':* & !'e'`) and
handed to to_tsquery('simple', ...) as a bound parameter: user text is neither SQL nor tsquery
syntax. Relevance is ts_rank over the newest `window` matches only. In trigram mode every term
is a case-insensitive substring (ILIKE), which pg_trgm's index serves from three characters on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select

from chat.search.index import (
    Scope,
    StatementIndex,
    id_bounds,
    messages,
    scoped,
    substring_conditions,
)
from chat.search.query import SearchQuery, Term

CONFIG = "simple"
_REGCONFIG: ColumnElement[Any] = literal_column(f"'{CONFIG}'::regconfig")


def quote(text: str) -> str:
    """A tsquery lexeme: quoted, so operators inside are text (the parser still splits it into
    the words the index holds, joined as a phrase)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def render_term(term: Term) -> str:
    return quote(term.text) + (":*" if term.kind == "prefix" else "")


def render(query: SearchQuery) -> str | None:
    if not query.include:
        return None
    expression = "(" + " & ".join(render_term(t) for t in query.include) + ")"
    return expression + "".join(" & !" + render_term(t) for t in query.exclude)


def _vector() -> ColumnElement[Any]:
    # Exactly the index's expression, so the planner can use it.
    return func.to_tsvector(_REGCONFIG, messages.c.body)


class PostgresIndex(StatementIndex):
    name = "postgres-tsvector"
    best_rank_first_ascending = False

    def __init__(self, *, trigram: bool) -> None:
        self.trigram = trigram

    def ranks(self, query: SearchQuery) -> bool:
        return not self.trigram and render(query) is not None

    def statement(self, query: SearchQuery, scope: Scope, *, rank: bool) -> Select[Any]:
        columns: list[Any] = [messages.c.id.label("id")]
        statement: Select[Any]
        expression = render(query)
        if self.trigram:
            conditions = substring_conditions(
                query, list(query.include), list(query.exclude), ilike=True
            )
            statement = select(*columns).where(*conditions)
        elif expression is None:
            statement = select(*columns)
        else:
            tsquery = func.to_tsquery(_REGCONFIG, expression)
            if rank:
                columns.append(func.ts_rank(_vector(), tsquery).label("rank"))
            statement = select(*columns).where(_vector().op("@@")(tsquery))
        statement = statement.where(*id_bounds(messages.c.id, scope))
        return scoped(statement, scope).order_by(messages.c.id.desc())
