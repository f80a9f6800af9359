"""The metrics recorder in one process: what each call does to the exposition, and the null
object that stands in when metrics are off."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from starlette.types import Message, Receive, Scope, Send

from chat.metrics import (
    RATE_LIMITED_CHANNELS,
    REFUSAL_REASONS,
    Metrics,
    MetricsMisconfigured,
    NullMetrics,
    create_metrics,
)
from chat.requestmetrics import (
    UNMATCHED,
    RequestMetricsMiddleware,
    method_label,
    route_template,
)
from tests.support.metrics import Scrape


def read(metrics: Metrics) -> Scrape:
    return Scrape(metrics.exposition().decode())


def test_each_call_moves_its_metric() -> None:
    metrics = Metrics()
    metrics.socket_opened()
    metrics.socket_opened()
    metrics.socket_closed()
    metrics.connection_refused("origin")
    metrics.rate_limited("http")
    metrics.batch_committed(drafts=3, stored=2, seconds=0.004)
    metrics.batch_committed(drafts=1, stored=0, seconds=0.002)
    metrics.delivery_latency(0.0007)
    metrics.delivered(300)
    metrics.delivered(0)
    metrics.evicted()
    metrics.broker_up(True)
    metrics.broker_reconnected()
    metrics.replayed(0)
    metrics.replayed(12)
    metrics.http_request(route="/api/messages", method="POST", status=201)
    scraped = read(metrics)
    assert scraped.value("chat_open_sockets") == 1
    assert scraped.value("chat_connections_refused_total", reason="origin") == 1
    assert scraped.value("chat_rate_limited_total", channel="http") == 1
    assert scraped.value("chat_messages_stored_total") == 2
    assert scraped.value("chat_commit_batch_size_count") == 2
    assert scraped.value("chat_commit_batch_size_sum") == 4
    assert scraped.value("chat_commit_batch_size_bucket", le="2.0") == 1
    assert scraped.value("chat_commit_batch_size_bucket", le="4.0") == 2
    assert scraped.value("chat_commit_duration_seconds_sum") == pytest.approx(0.006)
    assert scraped.value("chat_delivery_latency_seconds_bucket", le="0.0005") == 0
    assert scraped.value("chat_delivery_latency_seconds_bucket", le="0.001") == 1
    assert scraped.value("chat_broadcast_deliveries_total") == 300
    assert scraped.value("chat_slow_consumer_evictions_total") == 1
    assert scraped.value("chat_broker_up") == 1
    assert scraped.value("chat_broker_reconnects_total") == 1
    assert scraped.value("chat_relay_replays_total") == 2
    assert scraped.value("chat_relay_replayed_messages_total") == 12
    assert (
        scraped.value(
            "chat_http_requests_total", route="/api/messages", method="POST", status="201"
        )
        == 1
    )
    metrics.broker_up(False)
    assert read(metrics).value("chat_broker_up") == 0


def test_labelled_counters_start_at_zero_for_every_known_label() -> None:
    # rate() over a series that appears only at its first event misses that event.
    scraped = read(Metrics())
    for reason in REFUSAL_REASONS:
        assert ("chat_connections_refused_total", frozenset({("reason", reason)})) in (
            scraped.samples
        )
    for channel in RATE_LIMITED_CHANNELS:
        assert ("chat_rate_limited_total", frozenset({("channel", channel)})) in scraped.samples


def test_two_recorders_in_one_process_count_apart() -> None:
    # Each app owns its registry: no "Duplicated timeseries" error, no shared counts.
    first, second = Metrics(), Metrics()
    first.evicted()
    assert read(first).value("chat_slow_consumer_evictions_total") == 1
    assert read(second).value("chat_slow_consumer_evictions_total") == 0


def test_multiprocess_mode_needs_the_variable_before_start(tmp_path: Path) -> None:
    # prometheus_client chose in-memory values at import; mmap files would never be written.
    with pytest.raises(MetricsMisconfigured, match="must be set in the environment before"):
        Metrics(multiprocess_dir=str(tmp_path))


def test_multiprocess_mode_needs_an_existing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(MetricsMisconfigured, match="is not a directory"):
        Metrics(multiprocess_dir=str(missing))


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_the_null_object_has_every_method_with_the_same_signature() -> None:
    assert public_methods(NullMetrics) == public_methods(Metrics)
    null = NullMetrics()
    null.connection_refused("origin")
    null.batch_committed(drafts=1, stored=1, seconds=0.1)
    assert null.exposition() == b""


def test_create_metrics_follows_the_setting() -> None:
    assert isinstance(create_metrics(enabled=False, multiprocess_dir=None), NullMetrics)
    assert isinstance(create_metrics(enabled=True, multiprocess_dir=None), Metrics)


class Route:
    def __init__(self, path: str) -> None:
        self.path = path


@pytest.mark.parametrize(
    ("scope", "route", "method"),
    [
        ({"route": Route("/api/messages"), "method": "GET"}, "/api/messages", "GET"),
        ({"route": Route("/static"), "method": "HEAD"}, "/static", "HEAD"),
        ({"method": "GET"}, UNMATCHED, "GET"),
        ({"route": object(), "method": "BREW"}, UNMATCHED, "other"),
        ({"route": Route(""), "method": "get"}, UNMATCHED, "other"),
    ],
)
def test_request_labels_are_bounded(scope: dict[str, object], route: str, method: str) -> None:
    assert route_template(scope) == route
    assert method_label(scope) == method


class Requests(NullMetrics):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def http_request(self, *, route: str, method: str, status: int) -> None:
        self.seen.append((route, method, status))


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Message) -> None:
    pass


@pytest.mark.anyio
async def test_the_middleware_counts_answers_failures_and_nothing_else() -> None:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route("/api/messages")  # what Starlette's router does on a match
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def fail(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    async def leave(scope: Scope, receive: Receive, send: Send) -> None:
        return  # the client went away before any answer

    metrics = Requests()

    def scope(kind: str = "http") -> Scope:
        return {"type": kind, "method": "POST", "path": "/x/1", "state": {"metrics": metrics}}

    await RequestMetricsMiddleware(answer)(scope(), no_body, discard)
    with pytest.raises(RuntimeError):
        await RequestMetricsMiddleware(fail)(scope(), no_body, discard)
    await RequestMetricsMiddleware(leave)(scope(), no_body, discard)
    await RequestMetricsMiddleware(leave)(scope("websocket"), no_body, discard)
    assert metrics.seen == [("/api/messages", "POST", 201), (UNMATCHED, "POST", 500)]
