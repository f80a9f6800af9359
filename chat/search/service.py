"""SearchService: what a search may see, and the page of results it answers.

The rooms searched are decided at the time of the query by the rooms service (the one place
that says who may read what, chat.rooms.policy): public rooms, and the private rooms and DMs the
caller belongs to now. A member removed a moment ago stops finding the room's messages; a room
the caller may not read is never searched, so nothing in the answer (results, their number,
`has_more`) depends on what it holds. `in:` / `room=` naming a room the caller may not read is
`not_found`, word for word the answer for a room that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth.principal import Principal
from chat.auth.repository import AccountRepository
from chat.db import single_read
from chat.errors import ClientError
from chat.repository import MessageRepository
from chat.rooms.service import RoomService
from chat.search.index import Scope, SearchIndex
from chat.search.query import SearchQuery, parse_query
from chat.search.snippet import snippet
from chat.services import ChatService

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# sort=relevance ranks only this many of the newest matches: ranking every match of a common
# word is what makes search slow (0.5 s for 351k matches), newest first costs the page.
RELEVANCE_WINDOW = 1000
Sort = Literal["newest", "relevance"]


@dataclass(frozen=True, slots=True)
class SearchRequest:
    q: str
    room: str | None = None
    author: str | None = None  # from=
    before: int | datetime | None = None
    after: int | datetime | None = None
    limit: int = DEFAULT_LIMIT
    sort: Sort = "newest"
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    message: dict[str, Any]  # the standard message object (its `room` is the room's name)
    room_title: str
    snippet: str  # escaped HTML; <mark> is its only markup

    @property
    def permalink(self) -> str:
        return f"/r/{self.message['room']}/m/{self.message['id']}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.message,
            "room_title": self.room_title,
            "snippet": self.snippet,
            "permalink": self.permalink,
        }


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: SearchQuery
    hits: list[SearchHit]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def parse_request(params: Mapping[str, str]) -> SearchRequest:
    """The search parameters of a query string (API and page alike), or ClientError(400)."""
    sort = params.get("sort") or "newest"
    if sort not in ("newest", "relevance"):
        raise ClientError("invalid_sort", f"'sort' is 'newest' or 'relevance', not {sort!r}")
    return SearchRequest(
        q=params.get("q", ""),
        room=params.get("room") or None,
        author=params.get("from") or None,
        before=_bound(params.get("before"), "before"),
        after=_bound(params.get("after"), "after"),
        limit=_limit(params.get("limit")),
        sort="relevance" if sort == "relevance" else "newest",
        cursor=params.get("cursor") or None,
    )


class SearchService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        index: SearchIndex,
        rooms: RoomService,
        chat: ChatService,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._index = index
        self._rooms = rooms
        self._chat = chat

    @property
    def index(self) -> SearchIndex:
        return self._index

    async def search(self, principal: Principal, request: SearchRequest) -> SearchPage:
        query = parse_query(_with_filters(request))
        readable = await self._readable_rooms(principal, query.room)
        cursor = _decode_cursor(request.cursor, request.sort)
        async with single_read(self._sessionmaker) as session:
            scope = await self._scope(session, query, request, readable)
            if scope is None:
                return SearchPage(query, [], None)
            ids, next_cursor = await self._ids(session, query, scope, request, cursor)
            records = await MessageRepository(session).by_ids(ids)
        hits = []
        for message_id in ids:
            record = records.get(message_id)
            if record is None or record.deleted:
                continue  # deleted between the two reads
            name, title = readable[record.room_id]
            message = self._chat.present(record, room=name)
            hits.append(
                SearchHit(
                    message=message.to_dict(),
                    room_title=title,
                    snippet=str(snippet(record.body, query, trigram=self._index.trigram)),
                )
            )
        return SearchPage(query, hits, next_cursor)

    async def _readable_rooms(
        self, principal: Principal, only: str | None
    ) -> dict[int, tuple[str, str]]:
        """Room id -> (name, title) of the rooms this caller may read now."""
        if only is not None:
            room = (await self._rooms.access(principal, only)).room  # not_found if not theirs
            return {room.id: (room.name, room.title)}
        return {
            room.id: (room.name, room.title) for room in await self._rooms.readable_rooms(principal)
        }

    async def _scope(
        self,
        session: AsyncSession,
        query: SearchQuery,
        request: SearchRequest,
        readable: Mapping[int, tuple[str, str]],
    ) -> Scope | None:
        if not readable:
            return None
        author_id = None
        if query.author is not None:
            user = await AccountRepository(session).user_by_username(query.author)
            if user is None:
                return None  # nobody of that name: nothing they wrote
            author_id = user.account.id
        scope = Scope(room_ids=tuple(sorted(readable)), author_id=author_id)
        if isinstance(request.before, int):
            scope = replace(scope, below_id=request.before)
        elif request.before is not None:
            scope = replace(scope, before_time=request.before)
        if isinstance(request.after, int):
            scope = replace(scope, above_id=request.after)
        elif request.after is not None:
            scope = replace(scope, after_time=request.after)
        return scope

    async def _ids(
        self,
        session: AsyncSession,
        query: SearchQuery,
        scope: Scope,
        request: SearchRequest,
        cursor: dict[str, int],
    ) -> tuple[list[int], str | None]:
        if request.sort == "newest":
            if "b" in cursor:
                below = cursor["b"]
                scope = replace(scope, below_id=min(below, scope.below_id or below))
            ids = await self._index.newest(session, query, scope, limit=request.limit + 1)
            more = len(ids) > request.limit
            ids = ids[: request.limit]
            return ids, _encode_cursor({"b": ids[-1]}) if more else None
        # Relevance: the window is pinned to the first page's newest match, so later pages
        # rank the same set even while new messages arrive.
        top = cursor.get("t")
        if top is not None:
            scope = replace(scope, below_id=min(top + 1, scope.below_id or top + 1))
        ranked = await self._index.relevant(session, query, scope, window=RELEVANCE_WINDOW)
        offset = cursor.get("o", 0)
        page = ranked[offset : offset + request.limit]
        if offset + request.limit >= len(ranked):
            return page, None
        top = top if top is not None else max(ranked)
        return page, _encode_cursor({"t": top, "o": offset + request.limit})


def _with_filters(request: SearchRequest) -> str:
    """The query text with `room=` and `from=` added as `in:` and `from:` (one parser checks
    them; naming another room or person in the text too is refused as a second `in:`)."""
    parts = [request.q]
    for operator, value in (("in", request.room), ("from", request.author)):
        if value is None:
            continue
        if not value or any(character.isspace() or character == '"' for character in value):
            raise ClientError("invalid_query", f"{value!r} is not a {operator}: value")
        parts.append(f"{operator}:{value}")
    return " ".join(parts)


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ClientError("invalid_limit", f"'limit' is a number from 1 to {MAX_LIMIT}")
    return int(raw)


def _bound(raw: str | None, name: str) -> int | datetime | None:
    """A message id, or a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time."""
    if raw is None or raw == "":
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ClientError(
            f"invalid_{name}", f"'{name}' is a message id or a date such as 2026-11-30"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _encode_cursor(values: dict[str, int]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(raw: str | None, sort: Sort) -> dict[str, int]:
    if raw is None:
        return {}
    keys = {"b"} if sort == "newest" else {"t", "o"}
    try:
        if len(raw) > 100:
            raise ValueError(raw)
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        values = None
    if (
        not isinstance(values, dict)
        or set(values) != keys
        or not all(type(v) is int and 0 <= v < 2**62 for v in values.values())
    ):
        raise ClientError("invalid_cursor", "that cursor is not one this search gave out")
    return values
