"""ChatService: the one place where storage meets broadcast.

Posting goes through the group-commit writer (commit first), then every stored message is
rendered and serialized once and published to every node's hub. Reads go straight to the
repository in short read-only sessions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.broadcast.base import BroadcastBackend, Envelope
from chat.db import single_read
from chat.errors import ClientError
from chat.events.frames import change_frame, control_frame, message_frame
from chat.events.records import EventRecord, room_topic
from chat.events.repository import EventRepository
from chat.metrics import Metrics, NullMetrics
from chat.rendering import MessageRenderer, MessageState
from chat.repository import MessageRecord, MessageRepository
from chat.rooms.directory import RoomDirectory
from chat.rooms.policy import not_found
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
        directory: RoomDirectory,
        guest_access: str = "post",
        metrics: Metrics | NullMetrics | None = None,
        max_batch: int = 256,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._backend = backend
        self._renderer = renderer
        self._directory = directory
        self._metrics = metrics if metrics is not None else NullMetrics()
        self._writer = MessageWriter(
            sessionmaker,
            on_stored=self._publish,
            metrics=self._metrics,
            guest_access=guest_access,
            max_batch=max_batch,
        )
        self._presented: OrderedDict[int, _Presented] = OrderedDict()

    def start(self) -> None:
        self._writer.start()

    async def stop(self) -> None:
        await self._writer.stop()

    async def post(self, draft: Draft) -> PostResult:
        """Store a message (or find the one stored under its client_id) and broadcast it.

        Raises StorageUnavailable when the message could not be stored, ClientError when it was
        refused (no such room for this author, an archived room, a guest using an account's
        name).
        """
        return self._post_result(await self._writer.submit(await self.resolve_room(draft)))

    async def resolve_room(self, draft: Draft) -> Draft:
        """The draft with its room's id. Whether the author may post there is decided when it
        is stored (chat.writer): a room that does not exist and one that is not theirs give
        the same `not_found`."""
        if draft.room_id is not None:
            return draft
        try:
            room_id = await self._directory.id_of(draft.room)
        except (SQLAlchemyError, OSError) as error:
            raise StorageUnavailable(f"the room could not be looked up: {error}") from error
        if room_id is None:
            missing = not_found()
            missing.client_id = draft.client_id
            raise missing
        return draft.in_room(draft.room, room_id)

    async def post_in_order(self, draft: Draft, on_done: PostCallback) -> None:
        """Queue a message behind those already queued and return before it is stored.

        A connection that sends several messages gets them stored in the order it sent them,
        in as few transactions as the writer can manage, without waiting for each commit.
        `on_done` receives the PostResult, or the StorageUnavailable error, once the message is
        committed and broadcast (or refused). Raises WriterClosed when shutting down, and
        ClientError (nothing queued) for a room that does not exist.
        """
        future = await self._writer.enqueue(await self.resolve_room(draft))
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
        room = self._directory.known_name(result.message.room_id) or "?"
        return PostResult(message=self.present(result.message, room=room), created=result.created)

    async def history(self, room_id: int, room: str, query: HistoryQuery) -> HistoryPage:
        """A page of one room's messages (the caller decided the reader may read the room).

        Raises ClientError `message_not_found` (404) when `around` names no message of it."""
        async with single_read(self._sessionmaker) as session:
            # One statement per page (two only for an empty page, where a snapshot of its own
            # for "is there anything beyond" is as good an answer).
            repository = MessageRepository(session)
            if query.around is not None:
                found = await repository.around(room_id, query.around, query.limit)
                if found is None:
                    raise message_not_found()
                page = found
            elif query.before is not None:
                page = await repository.before(room_id, query.before, query.limit)
            elif query.after is not None:
                page = await repository.after(room_id, query.after, query.limit)
            else:
                page = await repository.newest(room_id, query.limit)
        # The newest page is what every page load asks for; older pages are read once each.
        remember = query.before is None and query.after is None and query.around is None
        messages = [self.present(row, room=room, remember=remember) for row in page.messages]
        return HistoryPage(
            messages=messages,
            has_older=page.has_older,
            has_newer=page.has_newer,
            older_cursor=messages[0].id if messages else query.before,
            newer_cursor=messages[-1].id if messages else query.after,
        )

    def present(self, row: MessageRecord, *, room: str, remember: bool = False) -> StoredMessage:
        """The message as readers see it, rendered once where that pays.

        The ones just published (and the newest page) are remembered: the echo, the broadcast
        and the catch-ups that follow reuse one rendering. Older pages are rendered on each read
        and not remembered, so a reader paging through old history cannot push the recent
        messages out. A rendering is good for one version of the message: every change bumps
        it, and a deleted message's renderings are forgotten at once (see `forget`).
        """
        if remember:
            return self._remembered(row, room=room).message
        cached = self._current(row)
        return cached.message if cached is not None else self._render(row, room)

    def _remembered(self, row: MessageRecord, *, room: str) -> _Presented:
        """The rendering and its message JSON, kept for the frames and catch-ups that follow."""
        cached = self._current(row)
        if cached is not None:
            return cached
        message = self._render(row, room)
        presented = _Presented(message, message.to_frame())
        self._presented[row.id] = presented
        if len(self._presented) > PRESENTED_CACHE_SIZE:
            self._presented.popitem(last=False)
        return presented

    def _current(self, row: MessageRecord) -> _Presented | None:
        """The remembered rendering of this very version of the message, if any."""
        cached = self._presented.get(row.id)
        if cached is None:
            return None
        if _still_current(cached.message, row):
            return cached
        del self._presented[row.id]  # an older version (its text, were it deleted since)
        return None

    def forget(self, message_id: int) -> None:
        """Drop the message's rendering (its text must not outlive a delete in memory)."""
        self._presented.pop(message_id, None)

    def _render(self, row: MessageRecord, room: str) -> StoredMessage:
        created_at = format_timestamp(row.created_at)
        edited_at = format_timestamp(row.edited_at) if row.edited_at is not None else None
        deleted_by = row.deleted_by
        html = self._renderer.render(
            message_id=row.id,
            body=row.body,
            author=row.author,
            created_at=created_at,
            client_id=row.client_id,
            user=row.user,
            state=MessageState(
                edited_at=edited_at,
                deleted=row.deleted,
                deleted_by=(
                    deleted_by.display_name
                    if deleted_by is not None and (row.user is None or deleted_by.id != row.user.id)
                    else None
                ),
                reply_to=row.reply.id if row.reply is not None else None,
                reply_author=row.reply.author if row.reply is not None else None,
                reply_excerpt=row.reply.excerpt if row.reply is not None else "",
                reply_deleted=row.reply.deleted if row.reply is not None else False,
            ),
        )
        return StoredMessage(
            id=row.id,
            body="" if row.deleted else row.body,
            author=row.author,
            client_id=row.client_id,
            created_at=created_at,
            html=str(html),
            user=row.user,
            room=room,
            reply_to=row.reply.to_dict() if row.reply is not None else None,
            edited_at=edited_at,
            deleted=row.deleted,
            deleted_by=deleted_by,
            reactions=tuple(group.to_dict() for group in row.reactions),
            version=row.version,
        )

    async def latest_id(self) -> int:
        """The newest change's seq (0 when none): where a broadcast relay starts."""
        async with single_read(self._sessionmaker) as session:
            return await EventRepository(session).latest_seq()

    async def envelopes_after(self, after: int, limit: int) -> list[Envelope]:
        """Every change above seq `after`, in log order, framed: what a relay replays."""
        async with single_read(self._sessionmaker) as session:
            events = await EventRepository(session).everything_after(after, limit)
        return await self.envelopes(events)

    async def catch_up(
        self, *, after: int, through: int, room_ids: set[int], user_id: int | None, limit: int
    ) -> list[Envelope]:
        """The changes above `after` up to `through` in these rooms and for this user (the
        caller decided which rooms the reader may read now), framed as they were sent live."""
        async with single_read(self._sessionmaker) as session:
            events = await EventRepository(session).after(
                after, room_ids=room_ids, user_id=user_id, limit=limit, below=through + 1
            )
        return await self.envelopes(events)

    async def envelopes(self, events: Sequence[EventRecord]) -> list[Envelope]:
        message_ids = [event.message_id for event in events if event.message_id is not None]
        rows: dict[int, MessageRecord] = {}
        if message_ids:
            async with single_read(self._sessionmaker) as session:
                rows = await MessageRepository(session).by_ids(message_ids)
        names = await self._directory.names(e.room_id for e in events if e.room_id is not None)
        envelopes = []
        for event in events:
            if event.message_id is not None:
                row = rows.get(event.message_id)
                if row is None:
                    continue  # never happens: messages are never removed, deletes leave tombstones
                # Remembered: these are the recent changes every client that was away asks
                # for, each catch-up of 1,000 rendered them all again. A rendering is checked
                # against the row's version, and this one replaces an older (say, not yet
                # deleted) one at once.
                room = names.get(row.room_id, "?")
                presented = self._remembered(row, room=room)
                frame = (
                    message_frame(presented.text, seq=event.seq)
                    if event.kind == "message"
                    else change_frame(event, presented.message.room, presented.text)
                )
            else:
                frame = control_frame(event)
            envelopes.append(
                Envelope(event.seq, event.topic, frame, event.effect, purge=event.purge)
            )
        return envelopes

    def on_changes(self, envelopes: Sequence[Envelope]) -> None:
        """Every node sees every published change here first (before its hub): renderings of
        an edited or deleted message are forgotten on all of them."""
        for envelope in envelopes:
            if envelope.purge is not None:
                self.forget(envelope.purge)

    async def publish_events(self, events: Sequence[EventRecord]) -> None:
        """Publish committed changes (the room service's) in log order."""
        if events:
            await self._backend.publish(await self.envelopes(events))

    async def _publish(self, rows: Sequence[MessageRecord], committed_at: float) -> None:
        # Serialized once here; every hub on every node forwards this very string.
        names = await self._directory.names({row.room_id for row in rows})
        envelopes = []
        for row in rows:
            assert row.seq is not None, "the writer gives every new message its event"
            presented = self._remembered(row, room=names.get(row.room_id, "?"))
            frame = message_frame(presented.text, seq=row.seq)
            envelopes.append(Envelope(row.seq, room_topic(row.room_id), frame))
        await self._backend.publish(envelopes)
        # publish has handed the batch to this node's hub, and the hub to every local socket
        # (see BroadcastBackend.publish): one observation covers the whole batch.
        self._metrics.delivery_latency(time.monotonic() - committed_at)


@dataclass(frozen=True, slots=True)
class _Presented:
    """A rendering, and its message object serialized once: frames splice the text in."""

    message: StoredMessage
    text: str


def message_not_found() -> ClientError:
    return ClientError("message_not_found", "no such message in this room", status=404)


def _still_current(cached: StoredMessage, row: MessageRecord) -> bool:
    """Whether a rendering shows the message as stored now: its own version, and the quote of
    the message it answers (which changes when that one is edited or deleted)."""
    if cached.version != row.version:
        return False
    reply = row.reply.to_dict() if row.reply is not None else None
    return cached.reply_to == reply
