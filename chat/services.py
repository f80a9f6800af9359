"""ChatService: the one place where storage meets broadcast.

Posting goes through the group-commit writer (commit first), then every stored message is
rendered and serialized once and published to every node's hub. Reads go straight to the
repository in short read-only sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.broadcast.base import BroadcastBackend, Envelope
from chat.db import SINGLE_READ_EXECUTION_OPTIONS
from chat.errors import ClientError
from chat.metrics import Metrics, NullMetrics
from chat.rendering import MessageRenderer
from chat.repository import MessageRecord, MessageRepository
from chat.schemas import Draft, HistoryQuery, StoredMessage, format_timestamp
from chat.writer import MessageWriter, StorageUnavailable, WriterClosed, WriteResult

logger = logging.getLogger(__name__)

# Rendered messages kept in memory (the newest are what pages and catch-ups ask for).
PRESENTED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class PostResult:
    message: StoredMessage
    created: bool


PostCallback = Callable[[PostResult | StorageUnavailable | ClientError], None]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: list[StoredMessage]
    has_older: bool
    has_newer: bool
    older_cursor: int | None
    newer_cursor: int | None


class ChatService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        backend: BroadcastBackend,
        renderer: MessageRenderer,
        metrics: Metrics | NullMetrics | None = None,
        max_batch: int = 256,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._backend = backend
        self._renderer = renderer
        self._metrics = metrics if metrics is not None else NullMetrics()
        self._writer = MessageWriter(
            sessionmaker, on_stored=self._publish, metrics=self._metrics, max_batch=max_batch
        )
        self._presented: OrderedDict[int, StoredMessage] = OrderedDict()

    def start(self) -> None:
        self._writer.start()

    async def stop(self) -> None:
        await self._writer.stop()

    async def post(self, draft: Draft) -> PostResult:
        """Store a message (or find the one stored under its client_id) and broadcast it.

        Raises StorageUnavailable when the message could not be stored, ClientError when it was
        refused (a guest's name is an account's).
        """
        return self._post_result(await self._writer.submit(draft))

    async def post_in_order(self, draft: Draft, on_done: PostCallback) -> None:
        """Queue a message behind those already queued and return before it is stored.

        A connection that sends several messages gets them stored in the order it sent them,
        in as few transactions as the writer can manage, without waiting for each commit.
        `on_done` receives the PostResult, or the StorageUnavailable error, once the message is
        committed and broadcast (or refused). Raises WriterClosed when shutting down.
        """
        future = await self._writer.enqueue(draft)
        future.add_done_callback(lambda done: on_done(self._outcome(done)))

    def _outcome(
        self, done: asyncio.Future[WriteResult]
    ) -> PostResult | StorageUnavailable | ClientError:
        if done.cancelled():
            return WriterClosed("the server is shutting down")
        error = done.exception()
        if error is None:
            return self._post_result(done.result())
        if isinstance(error, StorageUnavailable | ClientError):
            return error
        # The writer fails futures only with StorageUnavailable or ClientError; anything else is
        # a bug, but the sender must still hear that its message was not stored.
        logger.error("unexpected outcome of a queued message", exc_info=error)
        return StorageUnavailable("unexpected error")

    def _post_result(self, result: WriteResult) -> PostResult:
        return PostResult(message=self.present(result.message), created=result.created)

    async def history(self, query: HistoryQuery) -> HistoryPage:
        async with self._read_session() as session:
            # One statement per page (two only for an empty page, where a snapshot of its own
            # for "is there anything beyond" is as good an answer).
            repository = MessageRepository(session)
            if query.before is not None:
                page = await repository.before(query.before, query.limit)
            elif query.after is not None:
                page = await repository.after(query.after, query.limit)
            else:
                page = await repository.newest(query.limit)
        # The newest page is what every page load asks for; older pages are read once each.
        remember = query.before is None and query.after is None
        messages = [self.present(row, remember=remember) for row in page.messages]
        return HistoryPage(
            messages=messages,
            has_older=page.has_older,
            has_newer=page.has_newer,
            older_cursor=messages[0].id if messages else query.before,
            newer_cursor=messages[-1].id if messages else query.after,
        )

    def present(self, row: MessageRecord, *, remember: bool = False) -> StoredMessage:
        """The message as readers see it, rendered once where that pays.

        Messages never change once stored. The ones just published (and the newest page) are
        remembered: the echo, the broadcast and the catch-ups that follow reuse one rendering.
        Older pages are rendered on each read and not remembered, so a reader paging through
        old history cannot push the recent messages out.
        """
        cached = self._presented.get(row.id)
        if cached is not None:
            return cached
        presented = self._render(row)
        if remember:
            self._presented[row.id] = presented
            if len(self._presented) > PRESENTED_CACHE_SIZE:
                self._presented.popitem(last=False)
        return presented

    def _render(self, row: MessageRecord) -> StoredMessage:
        created_at = format_timestamp(row.created_at)
        html = self._renderer.render(
            message_id=row.id,
            body=row.body,
            author=row.author,
            created_at=created_at,
            client_id=row.client_id,
            user=row.user,
        )
        return StoredMessage(
            id=row.id,
            body=row.body,
            author=row.author,
            client_id=row.client_id,
            created_at=created_at,
            html=str(html),
            user=row.user,
        )

    async def latest_id(self) -> int:
        """The highest stored id (0 when empty): where a broadcast relay starts."""
        async with self._read_session() as session:
            page = await MessageRepository(session).newest(1)
        return page.messages[-1].id if page.messages else 0

    async def envelopes_after(self, after: int, limit: int) -> list[Envelope]:
        """Stored messages above `after`, oldest first, framed for a relay's replay."""
        async with self._read_session() as session:
            page = await MessageRepository(session).after(after, limit)
        return [Envelope(row.id, self.present(row).to_frame()) for row in page.messages]

    @contextlib.asynccontextmanager
    async def _read_session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as session:
            await session.connection(execution_options=SINGLE_READ_EXECUTION_OPTIONS)
            yield session

    async def _publish(self, rows: Sequence[MessageRecord], committed_at: float) -> None:
        # Serialized once here; every hub on every node forwards this very string.
        await self._backend.publish(
            [Envelope(row.id, self.present(row, remember=True).to_frame()) for row in rows]
        )
        # publish has handed the batch to this node's hub, and the hub to every local socket
        # (see BroadcastBackend.publish): one observation covers the whole batch.
        self._metrics.delivery_latency(time.monotonic() - committed_at)
