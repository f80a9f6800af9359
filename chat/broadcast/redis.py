"""Redis pub/sub transport for the relay (`CHAT_BROADCAST_URL=redis://host:port/db`).

One PUBLISH per stored batch on the configured channel; its payload is one line per message,
`"<id> <frame>"` (JSON never contains a raw newline, so lines split cleanly and a receiver reads
the id without parsing the frame). The subscription is pinged whenever it has been quiet for
`heartbeat` seconds and declared dead after `dead_after` seconds without a word, so a half-open
connection is noticed instead of hanging (encode/broadcaster#144). redis-py's own silent
reconnect is switched off (no retries): a reconnect the relay does not see would be a gap it
never replays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chat.broadcast.base import SIGNAL_MARK, Envelope
from chat.broadcast.relay import (
    DEFAULT_LIVENESS,
    BrokerUnavailable,
    Liveness,
    Received,
    Transport,
    describe,
)

logger = logging.getLogger(__name__)


class RedisTransport(Transport):
    name = "Redis"

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        liveness: Liveness = DEFAULT_LIVENESS,
    ) -> None:
        self._url = url
        self._channel = channel
        self._liveness = liveness
        self._publisher: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub: PubSub | None = None
        self._heard_at = 0.0
        self._pinged_at = 0.0

    def _client(self, role: str) -> Redis:
        return Redis.from_url(
            self._url,
            client_name=f"chat-{role}-{os.getpid()}",  # who is who in CLIENT LIST
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self._liveness.timeout,
            socket_timeout=self._liveness.timeout,
            health_check_interval=0,  # the heartbeat below does this, visibly
        )

    async def connect(self) -> None:
        await self.close()
        self._subscriber = self._client("listener")
        self._pubsub = self._subscriber.pubsub()
        try:
            await self._pubsub.subscribe(self._channel)
        except (RedisError, OSError) as error:
            raise BrokerUnavailable(f"cannot subscribe: {describe(error)}") from error
        self._heard_at = self._pinged_at = time.monotonic()

    async def receive(self) -> Sequence[Received]:
        pubsub = self._pubsub
        if pubsub is None:
            raise BrokerUnavailable("not subscribed")
        while True:
            now = time.monotonic()
            silent = now - self._heard_at
            if silent >= self._liveness.dead_after:
                raise BrokerUnavailable(f"no answer from Redis for {silent:.1f}s")
            try:
                if now - max(self._heard_at, self._pinged_at) >= self._liveness.heartbeat:
                    self._pinged_at = now
                    await pubsub.ping()
                wait = min(
                    self._liveness.heartbeat, self._heard_at + self._liveness.dead_after - now
                )
                message = await pubsub.get_message(timeout=max(wait, 0.01))
            except (RedisError, OSError) as error:
                raise BrokerUnavailable(describe(error)) from error
            if message is None:
                continue
            self._heard_at = time.monotonic()
            if message["type"] != "message":
                return []  # pong or subscribe confirmation: the connection is alive
            return _decode(message["data"])

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self._publisher is None:
            self._publisher = self._client("publisher")
        payload = "\n".join(f"{envelope.id} {envelope.frame}" for envelope in envelopes)
        try:
            await self._publisher.publish(self._channel, payload)
        except (RedisError, OSError) as error:
            raise BrokerUnavailable(f"publish failed: {describe(error)}") from error

    async def publish_line(self, line: str) -> None:
        if self._publisher is None:
            self._publisher = self._client("publisher")
        try:
            await self._publisher.publish(self._channel, line)
        except (RedisError, OSError) as error:
            raise BrokerUnavailable(f"publish failed: {describe(error)}") from error

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        subscriber, self._subscriber = self._subscriber, None
        if pubsub is not None:
            # A dead connection has nothing left to release.
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        if subscriber is not None:
            await subscriber.aclose()

    async def shutdown(self) -> None:
        await self.close()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.aclose()


def _decode(payload: str) -> list[Received]:
    received = []
    for line in payload.split("\n"):
        if line.startswith(SIGNAL_MARK):
            received.append(Received(0, None, signal=line[len(SIGNAL_MARK) :]))
            continue
        raw_id, _, frame = line.partition(" ")
        if not raw_id.isdigit() or not frame:
            logger.warning("ignoring a malformed line on the channel: %r", line[:80])
            continue
        received.append(Received(int(raw_id), frame))
    return received
