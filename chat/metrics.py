"""What the server measures, kept in Prometheus metrics and read by a scrape of GET /metrics.

`Metrics` owns its own CollectorRegistry, never prometheus_client's global one: a process may
run several apps (the tests do), and each counts for itself. Under `uvicorn --workers N` the
operator sets PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode): every worker then
keeps its values in mmap files in that directory, and a scrape, whichever worker serves it,
merges the files of all of them. `NullMetrics` has the same methods and records nothing; with
CHAT_METRICS off it stands in, so the code that records needs no branch.

Everything is recorded once per batch, per connection or per request, never once per recipient
of a broadcast: the fan-out hands out well over a hundred thousand frames a second.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

REFUSAL_REASONS = (
    "origin",
    "invalid_token",
    "sign_in_required",
    "too_many_connections",
    "server_full",
)
RATE_LIMITED_CHANNELS = ("socket", "http")
# From the commit to the sockets is well under a millisecond when idle; seconds mean trouble.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# The writer stores at most 256 drafts per transaction (chat.writer).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class MetricsMisconfigured(RuntimeError):
    """Multiprocess mode cannot work as configured; the server refuses to start."""


class Metrics:
    """The server's Prometheus metrics (see README "Metrics" for what each one means)."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        if multiprocess_dir is None:
            live: CollectorRegistry | None = self.registry
            ProcessCollector(registry=self.registry)  # one process: its CPU, memory and fds
        else:
            if not os.path.isdir(multiprocess_dir):
                raise MetricsMisconfigured(
                    f"PROMETHEUS_MULTIPROC_DIR {multiprocess_dir!r} is not a directory; "
                    "create it (empty) before starting the workers"
                )
            if values.ValueClass is values.MutexValue:
                # prometheus_client picks where values live when it is first imported.
                raise MetricsMisconfigured(
                    "PROMETHEUS_MULTIPROC_DIR must be set in the environment before the server "
                    "starts, not afterwards"
                )
            # Values live in the mmap files; a scrape reads every worker's files. Registering
            # the metrics themselves as well would count this worker twice.
            live = None
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]

        self._open_sockets = Gauge(
            "chat_open_sockets",
            "WebSocket connections open now (accepted and not yet closed).",
            registry=live,
            multiprocess_mode="livesum",
        )
        refused = Counter(
            "chat_connections_refused",
            "WebSocket handshakes refused, by reason: origin (403), invalid_token (401), "
            "sign_in_required (guests may not read), too_many_connections (429, per client "
            "address or account), server_full (503).",
            ["reason"],
            registry=live,
        )
        self._refused = {reason: refused.labels(reason=reason) for reason in REFUSAL_REASONS}
        rate_limited = Counter(
            "chat_rate_limited",
            "Messages refused by a rate limit: channel socket (a frame got rate_limited) or "
            "http (a POST to /api/messages or the form got 429).",
            ["channel"],
            registry=live,
        )
        self._rate_limited = {
            channel: rate_limited.labels(channel=channel) for channel in RATE_LIMITED_CHANNELS
        }
        self._stored = Counter(
            "chat_messages_stored",
            "Messages stored (new rows; a resend of a stored client_id is not counted).",
            registry=live,
        )
        self._batch_size = Histogram(
            "chat_commit_batch_size",
            "Queued drafts per group-commit transaction (new messages, resends, refusals).",
            buckets=BATCH_BUCKETS,
            registry=live,
        )
        self._commit_seconds = Histogram(
            "chat_commit_duration_seconds",
            "Seconds one group-commit transaction took, from BEGIN to the end of COMMIT.",
            buckets=COMMIT_BUCKETS,
            registry=live,
        )
        self._deliveries = Counter(
            "chat_broadcast_deliveries",
            "Message frames this node's hub handed to its sockets, one per message per socket "
            "(written at once, or queued for a busy socket's sender).",
            registry=live,
        )
        self._latency = Histogram(
            "chat_delivery_latency_seconds",
            "Seconds from the COMMIT of a batch of messages to the moment this node's hub has "
            "handed the batch to every local socket: written to the socket when it could take "
            "it at once, queued for its sender otherwise. Rendering and serializing are "
            "included; one observation per batch; messages committed on other nodes are not "
            "observed.",
            buckets=LATENCY_BUCKETS,
            registry=live,
        )
        self._evictions = Counter(
            "chat_slow_consumer_evictions",
            "Sockets closed with 4008 because their send queue was full.",
            registry=live,
        )
        self._broker_up = Gauge(
            "chat_broker_up",
            "1 while frames published now reach the other nodes (the relay is subscribed to "
            "its broker; the memory backend: always), else 0. With several workers: the "
            "lowest, so 0 when any live worker has lost its broker.",
            registry=live,
            multiprocess_mode="livemin",
        )
        self._reconnects = Counter(
            "chat_broker_reconnects",
            "Times the relay subscribed again after its broker connection failed.",
            registry=live,
        )
        self._replays = Counter(
            "chat_relay_replays",
            "Replays from the database, one after every (re)subscription, the first included.",
            registry=live,
        )
        self._replayed = Counter(
            "chat_relay_replayed_messages",
            "Messages delivered by replays: missed while the broker was unreachable.",
            registry=live,
        )
        self._http_requests = Counter(
            "chat_http_requests",
            "HTTP responses by route template (unmatched: no route), method and status. "
            "WebSocket handshakes are not counted here; scrapes of /metrics are.",
            ["route", "method", "status"],
            registry=live,
        )

    # ---- sockets (chat.routes.chatsocket) ----

    def socket_opened(self) -> None:
        self._open_sockets.inc()

    def socket_closed(self) -> None:
        self._open_sockets.dec()

    def connection_refused(self, reason: str) -> None:
        """`reason` is one of REFUSAL_REASONS."""
        self._refused[reason].inc()

    def rate_limited(self, channel: str) -> None:
        """`channel` is one of RATE_LIMITED_CHANNELS."""
        self._rate_limited[channel].inc()

    # ---- storage (chat.writer, chat.services) ----

    def batch_committed(self, *, drafts: int, stored: int, seconds: float) -> None:
        self._batch_size.observe(drafts)
        self._commit_seconds.observe(seconds)
        if stored:
            self._stored.inc(stored)

    def delivery_latency(self, seconds: float) -> None:
        self._latency.observe(seconds)

    # ---- broadcast (chat.broadcast) ----

    def delivered(self, count: int) -> None:
        if count:
            self._deliveries.inc(count)

    def evicted(self) -> None:
        self._evictions.inc()

    def broker_up(self, up: bool) -> None:
        self._broker_up.set(1 if up else 0)

    def broker_reconnected(self) -> None:
        self._reconnects.inc()

    def replayed(self, messages: int) -> None:
        self._replays.inc()
        if messages:
            self._replayed.inc(messages)

    # ---- HTTP (chat.requestmetrics) ----

    def http_request(self, *, route: str, method: str, status: int) -> None:
        self._http_requests.labels(route=route, method=method, status=str(status)).inc()

    # ---- exposition ----

    content_type = CONTENT_TYPE_LATEST

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (all workers' in multiprocess mode)."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """The process is stopping: its gauges leave the sums (open sockets, broker state)."""
        if self._multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self._multiprocess_dir)  # type: ignore[no-untyped-call]


class NullMetrics:
    """Metrics switched off (CHAT_METRICS=false): the same methods, recording nothing."""

    def socket_opened(self) -> None:
        pass

    def socket_closed(self) -> None:
        pass

    def connection_refused(self, reason: str) -> None:
        pass

    def rate_limited(self, channel: str) -> None:
        pass

    def batch_committed(self, *, drafts: int, stored: int, seconds: float) -> None:
        pass

    def delivery_latency(self, seconds: float) -> None:
        pass

    def delivered(self, count: int) -> None:
        pass

    def evicted(self) -> None:
        pass

    def broker_up(self, up: bool) -> None:
        pass

    def broker_reconnected(self) -> None:
        pass

    def replayed(self, messages: int) -> None:
        pass

    def http_request(self, *, route: str, method: str, status: int) -> None:
        pass

    content_type = CONTENT_TYPE_LATEST

    def exposition(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


def create_metrics(*, enabled: bool, multiprocess_dir: str | None) -> Metrics | NullMetrics:
    return Metrics(multiprocess_dir=multiprocess_dir) if enabled else NullMetrics()
