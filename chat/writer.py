"""Group commit: one task stores queued drafts, sharing a transaction among concurrent ones.

Every message is committed before it is published, and messages are published in commit order,
which on one process is id order. A burst of messages from many clients costs one transaction
(one fsync) instead of one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.auth.names import name_key
from chat.auth.repository import AccountRepository
from chat.conversation.mentions import NONE as NO_MENTIONS
from chat.conversation.mentions import Mentions
from chat.conversation.mentions import resolve as resolve_mentions
from chat.db import WRITE_EXECUTION_OPTIONS
from chat.errors import ClientError
from chat.events.records import NewEvent
from chat.events.repository import EventRepository
from chat.repository import MessageRecord, MessageRepository, NewMessage, ReplyRef
from chat.rooms.policy import RoomAccess, RoomRecord, not_found
from chat.rooms.repository import RoomRepository
from chat.schemas import Draft

logger = logging.getLogger(__name__)

# How often a batch is tried: again when a concurrent writer (another process) stored one of its
# client_ids between our look-up and our insert, or when SQLite said "locked" without waiting.
_STORE_ATTEMPTS = 3
# SQLite answers "database is locked" without waiting out busy_timeout in a few cases (another
# process opening or recovering the WAL index at that moment). A refusal that quick is not the
# lock being held too long: the batch (nothing of it committed) is tried again shortly.
_LOCKED_AT_ONCE_SECONDS = 0.05
_LOCKED_RETRY_DELAY_SECONDS = 0.01


class StorageUnavailable(Exception):
    """The message was not stored: the database could not be written."""


class WriterClosed(StorageUnavailable):
    """The server is shutting down and takes no more messages."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    message: MessageRecord
    created: bool  # False: the client_id was already used; `message` is the earlier one


@dataclass(slots=True)
class _Pending:
    draft: Draft
    created_at: datetime
    future: asyncio.Future[WriteResult] = field(repr=False)
    # Found while storing: the message it answers, and who it mentions.
    reply: ReplyRef | None = None
    mentions: Mentions = NO_MENTIONS


# Receives the new rows of a committed batch and time.monotonic() at the end of its COMMIT.
StoredCallback = Callable[[Sequence[MessageRecord], float], Awaitable[None]]
# Per queued draft: its stored record and whether this batch created it, or why it was refused.
_Outcome = tuple[MessageRecord, bool] | ClientError


class WriterMetrics(Protocol):
    """What the writer reports (chat.metrics records it)."""

    def batch_committed(self, *, drafts: int, stored: int, seconds: float) -> None:
        """One transaction committed `drafts` queued drafts, `stored` of them new rows, in
        `seconds` from BEGIN to the end of COMMIT."""


@dataclass(frozen=True, slots=True)
class _Committed:
    outcomes: list[_Outcome]
    began: float  # time.monotonic() before BEGIN
    at: float  # time.monotonic() when COMMIT returned


class MessageWriter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        on_stored: StoredCallback,
        metrics: WriterMetrics,
        guest_access: str = "post",
        max_batch: int = 256,
        queue_size: int = 4096,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._on_stored = on_stored
        self._metrics = metrics
        self._guest_access = guest_access
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="message-writer")

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Store what is queued, then stop. Later submissions fail with WriterClosed."""
        self._closing = True
        if self._task is None:
            return
        await self._queue.put(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), drain_seconds)
        except TimeoutError:
            logger.error("message writer did not drain within %.1fs; cancelling", drain_seconds)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def submit(self, draft: Draft) -> WriteResult:
        """Store a draft and return once it is committed and published."""
        return await (await self.enqueue(draft))

    async def enqueue(self, draft: Draft) -> asyncio.Future[WriteResult]:
        """Queue a draft and return a future of its outcome without waiting for the commit.

        Drafts are stored in the order they were queued. Waits only while the queue is full.
        The future fails with StorageUnavailable when the draft could not be stored.
        """
        if self._closing:
            raise WriterClosed("the server is shutting down")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(draft, datetime.now(UTC), future))
        return future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first] if first is not None else []
            stopping = first is None
            while not stopping and len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                await self._process(batch)
            if stopping:
                self._fail_remaining()
                return

    def _fail_remaining(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and not item.future.done():
                item.future.set_exception(WriterClosed("the server is shutting down"))

    async def _process(self, batch: list[_Pending]) -> None:
        # The session (and its pooled connection) is released only after the publish: giving a
        # connection back to the pool costs a round trip to the database thread, and the
        # messages should not wait for it.
        try:
            async with self._sessionmaker() as session:
                await self._store_and_publish(session, batch)
        except (SQLAlchemyError, OSError) as error:
            # Only releasing the connection can fail here (the batch has its answers); the
            # writer must live on either way.
            logger.warning("releasing the writer's database session failed: %s", error)

    async def _store_and_publish(self, session: AsyncSession, batch: list[_Pending]) -> None:
        try:
            committed = await self._store_with_retries(session, batch)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("could not store %d message(s): %s", len(batch), error)
            _fail(batch)
            return
        except RuntimeError:
            # The database answered something impossible (see MessageRepository.add_new). The
            # transaction was rolled back; refuse the batch and keep the writer alive.
            logger.exception("storing %d message(s) failed", len(batch))
            _fail(batch)
            return
        results = committed.outcomes
        created = [
            outcome[0] for outcome in results if not isinstance(outcome, ClientError) and outcome[1]
        ]
        self._metrics.batch_committed(
            drafts=len(batch), stored=len(created), seconds=committed.at - committed.began
        )
        if created:
            try:
                await self._on_stored(created, committed.at)
            except Exception:
                # Stored but not fanned out: readers still get them through catch-up.
                logger.exception("publishing %d stored message(s) failed", len(created))
        for pending, outcome in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, ClientError):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(WriteResult(message=outcome[0], created=outcome[1]))

    async def _store_with_retries(self, session: AsyncSession, batch: list[_Pending]) -> _Committed:
        for attempt in range(1, _STORE_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                results = await self._store(session, batch)
            except IntegrityError:
                if attempt == _STORE_ATTEMPTS:
                    raise
                logger.info("client_id conflict with a concurrent writer; retrying batch")
            except OperationalError as error:
                if attempt == _STORE_ATTEMPTS or not _locked_at_once(error, started):
                    raise
                logger.info("database locked without waiting; retrying batch")
                await asyncio.sleep(_LOCKED_RETRY_DELAY_SECONDS * attempt)
            else:
                return _Committed(results, began=started, at=time.monotonic())
        raise AssertionError("unreachable")

    async def _store(self, session: AsyncSession, batch: list[_Pending]) -> list[_Outcome]:
        async with session.begin():
            # Options must be in place before the first statement, which is what BEGINs.
            await session.connection(execution_options=WRITE_EXECUTION_OPTIONS)
            refused = await _refusals(session, batch, guest_access=self._guest_access)
            plan = _plan_inserts([p for index, p in enumerate(batch) if index not in refused])
            stored = await _with_events(
                session,
                await MessageRepository(session).add_new(_new_message(p) for p in plan.inserted),
            )
            await _store_mentions(session, plan.inserted, stored)
        accepted = iter(plan.resolve(stored))
        return [refused.get(index) or next(accepted) for index in range(len(batch))]


@dataclass(slots=True)
class _InsertPlan:
    """Each queued draft's row among the distinct ones this batch inserts."""

    # Per draft: (index into the inserted rows, whether this draft is that row's first use).
    outcome: list[tuple[int, bool]]
    inserted: list[_Pending]

    def resolve(self, stored: list[tuple[MessageRecord, bool]]) -> list[tuple[MessageRecord, bool]]:
        results = []
        for index, first in self.outcome:
            record, created = stored[index]
            results.append((record, created and first))
        return results


def _locked_at_once(error: OperationalError, started: float) -> bool:
    return "locked" in str(error.orig) and time.monotonic() - started < _LOCKED_AT_ONCE_SECONDS


def _fail(batch: list[_Pending]) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(StorageUnavailable("the database could not be written"))


def _plan_inserts(batch: list[_Pending]) -> _InsertPlan:
    """A client_id repeated within the batch (a resend racing its original) is inserted once."""
    plan = _InsertPlan(outcome=[], inserted=[])
    first_use: dict[str, int] = {}  # client_id -> row index
    for pending in batch:
        client_id = pending.draft.client_id
        if client_id is not None and client_id in first_use:
            plan.outcome.append((first_use[client_id], False))
        else:
            index = len(plan.inserted)
            if client_id is not None:
                first_use[client_id] = index
            plan.inserted.append(pending)
            plan.outcome.append((index, True))
    return plan


async def _store_mentions(
    session: AsyncSession, inserted: list[_Pending], stored: list[tuple[MessageRecord, bool]]
) -> None:
    rows = [
        (user_id, record.room_id, record.id)
        for pending, (record, created) in zip(inserted, stored, strict=True)
        if created
        for user_id in sorted(pending.mentions.user_ids)
    ]
    await MessageRepository(session).add_mentions(rows)


async def _with_events(
    session: AsyncSession, stored: list[tuple[MessageRecord, bool]]
) -> list[tuple[MessageRecord, bool]]:
    """Append a `message` event for each new message (same transaction); records get its seq."""
    new = [record for record, created in stored if created]
    events = await EventRepository(session).append(
        [
            NewEvent(
                kind="message",
                created_at=record.created_at,
                room_id=record.room_id,
                user_id=record.user.id if record.user is not None else None,
                message_id=record.id,
            )
            for record in new
        ]
    )
    seqs = {event.message_id: event.seq for event in events}
    return [
        (replace(record, seq=seqs[record.id]) if created else record, created)
        for record, created in stored
    ]


async def _refusals(
    session: AsyncSession, batch: list[_Pending], *, guest_access: str
) -> dict[int, ClientError]:
    """Drafts that may not be stored, by position in the batch, and why: checked in the
    storing transaction (so a membership removed a moment ago counts), in at most three queries
    per batch, whatever its size."""
    rooms = await RoomRepository(session).rooms_by_ids(
        [p.draft.room_id for p in batch if p.draft.room_id]
    )
    refusals = await _room_refusals(session, batch, rooms, guest_access=guest_access)
    names = await _guests_with_taken_names(
        session, [p if index not in refusals else None for index, p in enumerate(batch)]
    )
    refusals.update(names)
    for index, pending in enumerate(batch):
        if index in refusals:
            continue
        try:
            await _find_reply_and_mentions(session, pending, rooms[pending.draft.room_id or 0])
        except ClientError as error:
            error.client_id = pending.draft.client_id
            refusals[index] = error
    return refusals


async def _find_reply_and_mentions(
    session: AsyncSession, pending: _Pending, room: RoomRecord
) -> None:
    """The message a draft answers (in the same room) and who it mentions; per draft, and
    only for drafts that answer or mention: most messages cost nothing here."""
    draft = pending.draft
    if draft.reply_to is not None:
        found = await MessageRepository(session).reply_target(draft.reply_to)
        if found is None or found[1] != room.id:
            raise ClientError("invalid_reply", "'reply_to' names no message of this room")
        pending.reply = found[0]
    pending.mentions = await resolve_mentions(
        session, body=draft.body, room=room, author=draft.user
    )


async def _room_refusals(
    session: AsyncSession,
    batch: list[_Pending],
    rooms: dict[int, RoomRecord],
    *,
    guest_access: str,
) -> dict[int, ClientError]:
    repository = RoomRepository(session)
    pairs = [
        (room.id, p.draft.user.id)
        for p in batch
        if p.draft.user is not None
        and (room := rooms.get(p.draft.room_id or 0)) is not None
        and not room.is_public
    ]
    memberships = await repository.memberships_among(pairs)
    refusals: dict[int, ClientError] = {}
    for index, pending in enumerate(batch):
        draft = pending.draft
        room = rooms.get(draft.room_id or 0)
        try:
            if room is None:
                raise not_found()
            user_id = draft.user.id if draft.user is not None else 0
            RoomAccess(
                draft.user, room, memberships.get((room.id, user_id)), guest_access
            ).require_post()
        except ClientError as error:
            error.client_id = draft.client_id
            refusals[index] = error
    return refusals


async def _guests_with_taken_names(
    session: AsyncSession, batch: list[_Pending | None]
) -> dict[int, ClientError]:
    """Guest drafts whose typed name is an account's username or display name (or looks like
    one), by position in the batch. Checked in the storing transaction: one query per batch,
    and none for a batch of signed-in or anonymous messages."""
    keys = {
        index: name_key(pending.draft.author)
        for index, pending in enumerate(batch)
        if pending is not None and pending.draft.user is None and pending.draft.author
    }
    if not keys:
        return {}
    taken = await AccountRepository(session).names_taken(keys.values())
    return {
        index: _name_taken(pending.draft)
        for index, key in keys.items()
        if key in taken and (pending := batch[index]) is not None
    }


def _name_taken(draft: Draft) -> ClientError:
    return ClientError(
        "name_taken",
        f"{draft.author!r} is the name of an account; pick another, or sign in",
        status=409,
        client_id=draft.client_id,
    )


def _new_message(pending: _Pending) -> NewMessage:
    draft = pending.draft
    return NewMessage(
        body=draft.body,
        # A signed-in author's name is their account's, whatever the client sent.
        author=draft.user.display_name if draft.user is not None else draft.author,
        client_id=draft.client_id,
        created_at=pending.created_at,
        room_id=draft.room_id or 0,  # resolved by the service; 0 matches no room
        user=draft.user,
        reply=pending.reply,
        mentions_room=pending.mentions.room,
    )
