"""One search interface over the engine's full-text index, and how a query is scoped.

An implementation turns a parsed query (chat.search.query) into its engine's syntax, with every
user term quoted, and answers message ids; the service decides which rooms are searched, reads
the messages and presents them. `open_index` picks the implementation from the engine's dialect
and finds in the schema whether the migration built a word index or a trigram one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Select, Table, and_, not_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from chat.models import Message
from chat.search import schema
from chat.search.query import SearchQuery, Term

messages = cast(Table, Message.__table__)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where to look: always a set of rooms the caller may read (never empty here), and the
    filters. `below_id` / `above_id` bound the message ids (exclusive): `before=` / `after=`
    and the next page's cursor."""

    room_ids: tuple[int, ...]
    author_id: int | None = None
    below_id: int | None = None
    above_id: int | None = None
    before_time: datetime | None = None
    after_time: datetime | None = None


class SearchIndex(Protocol):
    name: str
    trigram: bool

    async def newest(
        self, session: AsyncSession, query: SearchQuery, scope: Scope, *, limit: int
    ) -> list[int]:
        """Ids of matching messages, newest first, at most `limit`."""

    async def relevant(
        self, session: AsyncSession, query: SearchQuery, scope: Scope, *, window: int
    ) -> list[int]:
        """Ids of the newest `window` matches, best first (ties: newest first)."""


class StatementIndex:
    """What both implementations share: they build one statement (newest first, optionally
    with a `rank` column); paging and the bounded relevance window are done here alike."""

    name = "abstract"
    trigram = False
    # bm25 is better when lower; ts_rank when higher.
    best_rank_first_ascending = True

    def statement(self, query: SearchQuery, scope: Scope, *, rank: bool) -> Select[Any]:
        raise NotImplementedError

    def ranks(self, query: SearchQuery) -> bool:
        """Whether the engine can rank this query (else relevance is newest first)."""
        raise NotImplementedError

    async def newest(
        self, session: AsyncSession, query: SearchQuery, scope: Scope, *, limit: int
    ) -> list[int]:
        statement = self.statement(query, scope, rank=False).limit(limit)
        return [int(i) for i in (await session.execute(statement)).scalars()]

    async def relevant(
        self, session: AsyncSession, query: SearchQuery, scope: Scope, *, window: int
    ) -> list[int]:
        if not self.ranks(query):
            return await self.newest(session, query, scope, limit=window)
        inner = self.statement(query, scope, rank=True).limit(window).subquery()
        rank = inner.c.rank if self.best_rank_first_ascending else inner.c.rank.desc()
        statement = select(inner.c.id).order_by(rank, inner.c.id.desc())
        return [int(i) for i in (await session.execute(statement)).scalars()]


def scoped(statement: Select[Any], scope: Scope) -> Select[Any]:
    """The statement restricted to the scope; deleted messages are never results (their body
    is empty anyway: this is the second lock on the same door)."""
    conditions: list[ColumnElement[bool]] = [
        messages.c.room_id.in_(scope.room_ids),
        messages.c.deleted_at.is_(None),
    ]
    if scope.author_id is not None:
        conditions.append(messages.c.user_id == scope.author_id)
    if scope.before_time is not None:
        conditions.append(messages.c.created_at < scope.before_time)
    if scope.after_time is not None:
        conditions.append(messages.c.created_at > scope.after_time)
    return statement.where(and_(*conditions))


def id_bounds(key: Any, scope: Scope) -> list[ColumnElement[bool]]:
    bounds: list[ColumnElement[bool]] = []
    if scope.below_id is not None:
        bounds.append(key < scope.below_id)
    if scope.above_id is not None:
        bounds.append(key > scope.above_id)
    return bounds


def like_pattern(term: Term) -> str:
    """`%text%` with LIKE's own wildcards escaped (ESCAPE '\\')."""
    escaped = term.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def substring_conditions(
    query: SearchQuery, terms: list[Term], excluded: list[Term], *, ilike: bool
) -> list[ColumnElement[bool]]:
    """Substring matches on the body (trigram mode): each include must occur, no exclude."""
    del query
    body = messages.c.body

    def match(term: Term) -> ColumnElement[bool]:
        pattern = like_pattern(term)
        return body.ilike(pattern, escape="\\") if ilike else body.like(pattern, escape="\\")

    conditions = [match(term) for term in terms]
    if excluded:
        conditions.append(not_(or_(*(match(term) for term in excluded))))
    return conditions


async def open_index(engine: AsyncEngine) -> SearchIndex:
    """The implementation for this engine, in the mode the migration built."""
    from chat.search.postgres import PostgresIndex
    from chat.search.sqlite_fts5 import Fts5Index

    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = await connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = :name"),
                {"name": schema.FTS_TABLE},
            )
            return Fts5Index(trigram="trigram" in str(sql or "").lower())
        found = await connection.scalar(
            text("SELECT count(*) FROM pg_indexes WHERE indexname = :name"),
            {"name": schema.POSTGRES_TRIGRAM_INDEX},
        )
        return PostgresIndex(trigram=bool(found))
