"""Revoked credentials close the sockets they opened, on every node, at once.

When a session ends, a token is revoked or an account is disabled, the node that did it
publishes a signal through the fan-out backend; every node (itself included) asks the matching
sockets to close with 4401. Signals are live only, so each node also re-checks the credentials
of its open sockets every `recheck_seconds` (one query per node, not per socket): a revocation
published while the broker was down, or an expiry, takes effect within that bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from chat.auth.principal import Principal, Revocation, SignedIn
from chat.auth.recent_checks import RecentChecks
from chat.background import Background
from chat.broadcast.base import BroadcastBackend
from chat.broadcast.hub import Hub

logger = logging.getLogger(__name__)

CLOSE_REVOKED = 4401
CLOSE_REASON = "signed out: the session or token is no longer valid"
_SIGNAL_KIND = "revoked"

StillValid = Callable[..., Awaitable[tuple[set[int], set[int], set[int]]]]


def revocation_signal(revocation: Revocation) -> str:
    """The one-line signal that tells every node to close the sockets of `revocation`.

    The server's own `Revocations.publish` and `chat users` (which reaches the nodes from
    outside) both send this; `read_revocation_signal` is its inverse.
    """
    return json.dumps({"kind": _SIGNAL_KIND, **revocation.to_dict()}, separators=(",", ":"))


def read_revocation_signal(signal: str) -> Revocation | None:
    """The revocation a signal carries; None for a signal of another kind.

    Raises ValueError for a malformed signal (not JSON, not an object, or bad fields).
    """
    payload = json.loads(signal)
    if not isinstance(payload, dict):
        raise ValueError(f"a signal is a JSON object, not {signal[:120]!r}")
    if payload.get("kind") != _SIGNAL_KIND:
        return None
    try:
        return Revocation.from_dict(payload)
    except (TypeError, KeyError) as error:
        raise ValueError(f"malformed revocation signal {signal[:120]!r}") from error


class Revocations:
    def __init__(
        self,
        *,
        hub: Hub,
        backend: BroadcastBackend,
        recheck_seconds: float,
        recent_checks: RecentChecks | None = None,
    ) -> None:
        self._hub = hub
        self._recent = recent_checks
        self._backend = backend
        self._recheck_seconds = recheck_seconds
        self._background = Background("auth-recheck")

    async def publish(self, revocation: Revocation) -> None:
        """Close the revoked credentials' sockets here now, and on the other nodes."""
        await self._backend.publish_signal(revocation_signal(revocation))

    def on_signal(self, signal: str) -> None:
        try:
            revocation = read_revocation_signal(signal)
        except ValueError:  # json.JSONDecodeError included
            logger.warning("ignoring a malformed signal: %r", signal[:120])
            return
        if revocation is None:
            return
        if self._recent is not None:  # before closing: a reconnect must not reuse a check
            self._recent.forget(revocation)
        closed = self._close(revocation.covers)
        if closed:
            logger.info(
                "closed %d socket(s) of user %d: credentials revoked",
                closed,
                revocation.user_id,
                extra={"user": revocation.user_id, "code": "revoked"},
            )

    def start(self, still_valid: StillValid) -> None:
        self._background.start(self._recheck_forever(still_valid))

    async def stop(self) -> None:
        await self._background.stop()

    async def recheck(self, still_valid: StillValid) -> int:
        """Close the sockets whose credentials are no longer valid; how many were asked to."""
        principals = [
            identity for identity in self._hub.identities() if isinstance(identity, SignedIn)
        ]
        if not principals:
            return 0
        sessions, tokens, users = _credential_ids(principals)
        live_sessions, live_tokens, live_users = await still_valid(
            session_ids=sessions, token_ids=tokens, user_ids=users
        )
        checked_sessions, checked_tokens, checked_users = set(sessions), set(tokens), set(users)

        # Only what was checked can be found revoked: a socket that opened while the query ran
        # has a credential the query never asked about (under churn, closing those cut fresh
        # sockets with 4401); the next re-check covers it.
        def revoked(identity: object) -> bool:
            if not isinstance(identity, SignedIn):
                return False
            credential = identity.credential
            if credential.kind == "session" and credential.id is not None:
                return credential.id in checked_sessions and credential.id not in live_sessions
            if credential.kind == "token" and credential.id is not None:
                return credential.id in checked_tokens and credential.id not in live_tokens
            user_id = identity.account.id
            return user_id in checked_users and user_id not in live_users

        return self._close(revoked)

    async def _recheck_forever(self, still_valid: StillValid) -> None:
        while True:
            await asyncio.sleep(self._recheck_seconds)
            try:
                closed = await self.recheck(still_valid)
            except Exception:  # the database may be away for a while; try again next time
                logger.warning("re-checking socket credentials failed", exc_info=True)
                continue
            if closed:
                logger.info("re-check closed %d socket(s) with revoked credentials", closed)

    def _close(self, matches: Callable[[Principal], bool]) -> int:
        return self._hub.close_matching(
            lambda identity: isinstance(identity, SignedIn) and matches(identity),
            CLOSE_REVOKED,
            CLOSE_REASON,
        )


def _credential_ids(
    principals: Sequence[SignedIn],
) -> tuple[list[int], list[int], list[int]]:
    sessions: set[int] = set()
    tokens: set[int] = set()
    users: set[int] = set()
    for principal in principals:
        credential = principal.credential
        if credential.kind == "session" and credential.id is not None:
            sessions.add(credential.id)
        elif credential.kind == "token" and credential.id is not None:
            tokens.add(credential.id)
        else:
            users.add(principal.account.id)
    return sorted(sessions), sorted(tokens), sorted(users)
