"""Presence: who is online, away or offline, across nodes, for what it costs.

Each node knows its own sockets: a user with a socket whose page is visible is `online`; one
whose every tab has been hidden for `away_after` seconds is `away`; one without sockets is
offline. Nodes tell each other *changes* (batched every `flush_every` seconds) as signals
through the fan-out backend, and a tiny heartbeat every `beat_every` seconds; a node unheard
for `dead_after` seconds is dead, and its users go offline everywhere (SIGKILL included). A node
that hears of a node it does not know asks for one snapshot of its state, and so does one that
sees it missed some of a node's changes (they are numbered, and every heartbeat says how many
there were): signals are at most once, and a broker outage shorter than `dead_after` drops
changes without burying anyone. Snapshots are sent only then.

Clients see presence for the room they are looking at: `{"type": "watch", "room"}` puts the
socket on that room's presence topic (`p:<room id>`, one room per socket), answers a snapshot
of that room's members who are not offline, and then every change of a member's status, once.
Rooms with more than `room_cap` members get no presence (Synapse issues #3971 and #15169 are
what presence for everyone in big rooms costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from chat.background import Background
from chat.broadcast.base import BroadcastBackend
from chat.broadcast.hub import Hub, Subscriber
from chat.events.frames import dumps
from chat.events.records import presence_topic

logger = logging.getLogger(__name__)

Status = Literal["online", "away", "offline"]
_RANK = {"offline": 0, "away": 1, "online": 2}
SIGNAL_KIND = "presence"
# A signal is one line through Redis or NOTIFY (8000 bytes): changes go in chunks of this many.
_CHUNK = 200

# (users, rooms) -> the (room id, user id) memberships among them
MembersIn = Callable[[Sequence[int], Collection[int]], Awaitable[set[tuple[int, int]]]]


@dataclass(slots=True)
class _Local:
    sockets: int = 0
    hidden: int = 0
    all_hidden_since: float | None = None


@dataclass(slots=True)
class _Node:
    heard_at: float
    users: dict[int, Status] = field(default_factory=dict)
    changes: int = 0  # how many `changes` signals of that node we know of


class Presence:
    def __init__(
        self,
        *,
        hub: Hub,
        backend: BroadcastBackend,
        members_in: MembersIn,
        away_after: float = 120.0,
        flush_every: float = 1.0,
        beat_every: float = 5.0,
        dead_after: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._backend = backend
        self._members_in = members_in
        self._away_after = away_after
        self._flush_every = flush_every
        self._beat_every = beat_every
        self._dead_after = dead_after
        self._clock = clock
        self.node = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._local: dict[int, _Local] = {}
        self._published: dict[int, Status] = {}  # what the other nodes were told of ours
        self._dirty: set[int] = set()
        self._changes_sent = 0  # numbers our `changes` signals; beats and snapshots tell it
        self._nodes: dict[str, _Node] = {}
        self._effective: dict[int, Status] = {}  # what our clients were told
        self._background = Background("presence")
        self._handling: set[asyncio.Future[None]] = set()  # held so they are not collected

    # ---- this node's sockets ----

    def opened(self, user_id: int) -> None:
        local = self._local.setdefault(user_id, _Local())
        local.sockets += 1
        local.all_hidden_since = None
        self._dirty.add(user_id)

    def closed(self, user_id: int, *, hidden: bool) -> None:
        local = self._local.get(user_id)
        if local is None:
            return
        local.sockets -= 1
        local.hidden -= int(hidden)
        if local.sockets <= 0:
            del self._local[user_id]
        elif local.hidden < local.sockets:
            local.all_hidden_since = None
        elif local.all_hidden_since is None:
            # The last visible tab closed: the hidden ones left start the away timer now.
            local.all_hidden_since = self._clock()
        self._dirty.add(user_id)

    def visibility(self, user_id: int, *, was_hidden: bool, hidden: bool) -> None:
        local = self._local.get(user_id)
        if local is None or was_hidden == hidden:
            return
        local.hidden += 1 if hidden else -1
        if local.hidden >= local.sockets:
            local.all_hidden_since = self._clock()
        else:
            local.all_hidden_since = None
        self._dirty.add(user_id)

    def _local_status(self, user_id: int, now: float) -> Status:
        local = self._local.get(user_id)
        if local is None or local.sockets <= 0:
            return "offline"
        since = local.all_hidden_since
        if since is not None and now - since >= self._away_after:
            return "away"
        return "online"

    # ---- the cluster's view ----

    def status(self, user_id: int) -> Status:
        best: Status = self._local_status(user_id, self._clock())
        for node in self._nodes.values():
            theirs = node.users.get(user_id, "offline")
            if _RANK[theirs] > _RANK[best]:
                best = theirs
        return best

    def statuses(self, user_ids: Iterable[int]) -> dict[int, Status]:
        return {user_id: self.status(user_id) for user_id in user_ids}

    def everyone(self) -> dict[int, Status]:
        """Every user who is not offline (for admins)."""
        users = set(self._local)
        for node in self._nodes.values():
            users.update(node.users)
        return {u: s for u in users if (s := self.status(u)) != "offline"}

    # ---- watching a room ----

    def watch(self, subscriber: Subscriber, room_id: int | None) -> None:
        """Put a socket on one room's presence topic (None: on none)."""
        for topic in [t for t in subscriber.topics if t.startswith("p:")]:
            self._hub.remove_topic(subscriber, topic)
        if room_id is not None:
            self._hub.add_topic(subscriber, presence_topic(room_id))

    # ---- running ----

    def start(self) -> None:
        self._background.start(self._run())

    async def stop(self) -> None:
        await self._background.stop()
        if self._published:
            # A clean stop: the other nodes need not wait `dead_after` to know.
            with contextlib.suppress(Exception):
                await self._announce(dict.fromkeys(self._published, "offline"))

    async def _run(self) -> None:
        await self._send({"kind": SIGNAL_KIND, "op": "sync", "node": self.node})
        next_beat = 0.0
        while True:
            await asyncio.sleep(self._flush_every)
            try:
                now = self._clock()
                await self._flush(now)
                if now >= next_beat:
                    next_beat = now + self._beat_every
                    await self._beat()
                await self._bury_dead_nodes(now)
            except Exception:  # presence is best effort; the next round tries again
                logger.warning("presence round failed", exc_info=True)

    async def _flush(self, now: float) -> None:
        # Users whose away timer ran out change without any event: look at the hidden ones.
        candidates = self._dirty | {
            user for user, local in self._local.items() if local.all_hidden_since is not None
        }
        self._dirty = set()
        changes: dict[int, Status] = {}
        for user_id in candidates:
            status = self._local_status(user_id, now)
            if self._published.get(user_id, "offline") != status:
                changes[user_id] = status
                if status == "offline":
                    self._published.pop(user_id, None)
                else:
                    self._published[user_id] = status
        if changes:
            await self._announce(changes)
            await self._tell_clients(changes.keys())

    async def _announce(self, changes: dict[int, Status]) -> None:
        items = list(changes.items())
        for start in range(0, len(items), _CHUNK):
            chunk = {str(user): status for user, status in items[start : start + _CHUNK]}
            self._changes_sent += 1
            await self._send(
                {
                    "kind": SIGNAL_KIND,
                    "op": "changes",
                    "node": self.node,
                    "n": self._changes_sent,
                    "users": chunk,
                }
            )

    async def _beat(self) -> None:
        # The count lets the others notice changes they missed (signals are at most once: a
        # broker outage shorter than `dead_after` drops them without burying anyone).
        await self._send(
            {"kind": SIGNAL_KIND, "op": "beat", "node": self.node, "n": self._changes_sent}
        )

    async def _bury_dead_nodes(self, now: float) -> None:
        dead = [
            name for name, node in self._nodes.items() if now - node.heard_at > self._dead_after
        ]
        affected: set[int] = set()
        for name in dead:
            affected.update(self._nodes.pop(name).users)
            logger.warning("presence: node %s went silent; its users are offline", name)
        if affected:
            await self._tell_clients(affected)

    # ---- signals from the other nodes ----

    def on_signal(self, signal: str) -> None:
        try:
            payload: Any = json.loads(signal)
            if not isinstance(payload, dict) or payload.get("kind") != SIGNAL_KIND:
                return
            sender = str(payload["node"])
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed presence signal: %r", signal[:120])
            return
        if sender == self.node:
            return  # our own echo: local state is the truth here
        self._spawn(self._handle(sender, op, payload))

    async def _handle(self, sender: str, op: str, payload: dict[str, Any]) -> None:
        # Everything this signal changes is applied before the first await: handlers of
        # consecutive signals run as separate tasks, and one that awaited before applying
        # could apply an older status over a newer one.
        now = self._clock()
        count = payload.get("n")
        node = self._nodes.get(sender)
        if node is None:
            node = self._nodes[sender] = _Node(heard_at=now)
            missed = op != "snapshot"  # a node we did not know: ask for its whole state once
        else:
            missed = _missed(node, op, count)
        node.heard_at = now
        stale = op == "snapshot" and isinstance(count, int) and count < node.changes
        if isinstance(count, int):
            node.changes = max(node.changes, count)
        changed: set[int] = set()
        if op in ("changes", "snapshot") and not stale:
            changed = self._apply(
                node, payload, first=op == "snapshot" and bool(payload.get("first"))
            )
        if missed:
            await self._send({"kind": SIGNAL_KIND, "op": "sync", "node": self.node})
        if op == "sync":
            await self._send_snapshot()
        await self._tell_clients(changed)

    @staticmethod
    def _apply(node: _Node, payload: dict[str, Any], *, first: bool) -> set[int]:
        """A node's changes (or a snapshot's chunk) into our view of it; the users touched."""
        users = {int(user): status for user, status in payload.get("users", {}).items()}
        if first:
            changed = set(node.users) | set(users)
            node.users = {}
        else:
            changed = set(users)
        for user, status in users.items():
            if status == "offline":
                node.users.pop(user, None)
            elif status in _RANK:
                node.users[user] = status
        return changed

    async def _send_snapshot(self) -> None:
        items = list(self._published.items())
        for start in range(0, max(len(items), 1), _CHUNK):
            chunk = {str(user): status for user, status in items[start : start + _CHUNK]}
            await self._send(
                {
                    "kind": SIGNAL_KIND,
                    "op": "snapshot",
                    "node": self.node,
                    "n": self._changes_sent,
                    "first": start == 0,
                    "users": chunk,
                }
            )

    # ---- telling clients ----

    async def _tell_clients(self, users: Iterable[int]) -> None:
        """Frames for users whose cluster-wide status changed, to the presence topics of their
        rooms that sockets here watch (a node does nothing for rooms nobody here watches)."""
        changed: dict[int, Status] = {}
        for user_id in users:
            status = self.status(user_id)
            if self._effective.get(user_id, "offline") == status:
                continue
            if status == "offline":
                self._effective.pop(user_id, None)
            else:
                self._effective[user_id] = status
            changed[user_id] = status
        if not changed:
            return
        watched = self._hub.watched_rooms()
        if not watched:
            return  # the common case on a busy node: nobody here watches any room's presence
        # One read for all of this flush's changes, and only among the rooms watched here: a
        # read per user came to 333 a second on a node of 10,000 people (the whole event loop).
        memberships = await self._members_in(sorted(changed), watched)
        by_room: dict[int, dict[str, Status]] = {}
        for room_id, user_id in sorted(memberships):
            by_room.setdefault(room_id, {})[str(user_id)] = changed[user_id]
        for room_id, statuses in by_room.items():
            self._hub.deliver_ephemeral(presence_topic(room_id), _changes_frame(statuses))

    async def _send(self, payload: dict[str, Any]) -> None:
        await self._backend.publish_signal(json.dumps(payload, separators=(",", ":")))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        task.add_done_callback(_log_failure)


def _missed(node: _Node, op: str, count: object) -> bool:
    """Whether a signal from a known node shows that we missed some of its changes."""
    if not isinstance(count, int):
        return False
    if op == "changes":
        return count != node.changes + 1
    if op == "beat":
        return count > node.changes
    return False


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("presence signal failed", exc_info=task.exception())


def _changes_frame(statuses: dict[str, Status]) -> str:
    """One frame for a room's changes of one flush: 400 people coming and going a second were
    400 frames to every watcher, each its own write."""
    if len(statuses) == 1:
        ((user_id, status),) = statuses.items()
        return dumps({"type": "presence", "user": int(user_id), "status": status})
    return dumps({"type": "presence", "users": statuses})
