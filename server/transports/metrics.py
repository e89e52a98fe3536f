"""GET /metrics: the Prometheus text format, from one registry per application.

Three sources, so the hot path never calls into prometheus_client:

- session-level counters and histograms (ended by reason, time to first token, duration,
  provider errors, retries, fallbacks, cancel latency), updated once per session by a
  ``manager.on_session_end`` listener;
- live state read at scrape time: open connections, live sessions, outbound queue depth,
  and the per-event ``Tallies`` (events and bytes sent by type, chunks merged);
- process CPU and memory, read from /proc in a worker thread (file reads block).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from server.metrics import Tallies, TransportTally
from server.sessions.outbox import Outbox
from server.sessions.session import Session
from server.state import CONNECTIONS, MANAGER, Connections

__all__ = ["METRICS", "TALLIES", "AppMetrics", "install_metrics"]

TALLIES = web.AppKey("tallies", Tallies)

# Time to first token and durations of LLM streams: tens of ms to minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Cancel to stream_end is expected in the sub-millisecond to millisecond range.
_CANCEL_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class AppMetrics:
    """The application's registry and the session-level metrics in it."""

    def __init__(self, tallies: Tallies) -> None:
        self.tallies = tallies
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions_ended = Counter(
            "tokenmux_sessions_ended",
            "Sessions ended, by reason.",
            ["provider", "reason"],
            registry=r,
        )
        self.ttft = Histogram(
            "tokenmux_time_to_first_token_seconds",
            "Session start to first chunk queued.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "tokenmux_session_duration_seconds",
            "Session start to stream_end.",
            ["provider"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.output_tokens = Counter(
            "tokenmux_output_tokens",
            "Output tokens (provider count, else estimated).",
            ["provider"],
            registry=r,
        )
        self.tokens = Counter(
            "tokenmux_tokens",
            "Tokens by kind: input, cached_input, output, reasoning (provider counts, else "
            "estimated; cached and reasoning tokens are part of input and output).",
            ["provider", "kind"],
            registry=r,
        )
        self.tool_calls = Counter(
            "tokenmux_tool_calls", "Tool calls the models made.", ["provider"], registry=r
        )
        self.provider_errors = Counter(
            "tokenmux_provider_errors",
            "Failed provider attempts, by error code.",
            ["provider", "code"],
            registry=r,
        )
        self.retries = Counter(
            "tokenmux_provider_retries", "Provider attempts retried.", ["provider"], registry=r
        )
        self.fallbacks = Counter(
            "tokenmux_provider_fallbacks",
            "Requests handed to a fallback provider.",
            ["from_provider", "to_provider"],
            registry=r,
        )
        self.cancel_latency = Histogram(
            "tokenmux_cancel_latency_seconds",
            "Cancel requested to the session's stream_end queued.",
            buckets=_CANCEL_BUCKETS,
            registry=r,
        )
        self.process = ProcessCollector(registry=None)
        # labels() costs a lock and a tuple key per call; every session end needs four.
        self._children: dict[tuple[str, str | None], tuple[Any, Any, Any, Any]] = {}

    def _for(self, provider: str, reason: str) -> tuple[Any, Any, Any, Any]:
        return (
            self.sessions_ended.labels(provider, reason),
            self.ttft.labels(provider),
            self.duration.labels(provider),
            self.output_tokens.labels(provider),
        )

    def session_ended(self, session: Session) -> None:
        """The ``on_session_end`` listener: one session's numbers into the registry."""
        provider, tally, end = session.provider.name, session.tally, session.stream
        children = self._children.get((provider, session.end_reason))
        if children is None:
            children = self._children[(provider, session.end_reason)] = self._for(
                provider, session.end_reason or "unknown"
            )
        ended, ttft, duration, output_tokens = children
        ended.inc()
        if tally.ttft_s is not None:
            ttft.observe(tally.ttft_s)
        duration.observe(tally.duration_s)
        usage = end.usage()
        output_tokens.inc(usage["output_tokens"])
        for kind, key in _TOKEN_KINDS:
            if usage.get(key):
                self.tokens.labels(provider, kind).inc(usage[key])
        if calls := len(end.tool_calls):
            self.tool_calls.labels(provider).inc(calls)
        errors = list(tally.provider_errors)
        if tally.error_code and tally.error_code.startswith("provider_"):
            # The failure that ended it belongs to the provider tried last (a fallback's).
            last = tally.fallbacks[-1][1] if tally.fallbacks else provider
            errors.append((last, tally.error_code))
        for failed_provider, code in errors:
            self.provider_errors.labels(failed_provider, code).inc()
        for retried in tally.retries:
            self.retries.labels(retried).inc()
        for from_provider, to_provider in tally.fallbacks:
            self.fallbacks.labels(from_provider, to_provider).inc()
        if tally.cancel_requested_at is not None:
            self.cancel_latency.observe(time.monotonic() - tally.cancel_requested_at)


_TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("cached_input", "cached_input_tokens"),
    ("output", "output_tokens"),
    ("reasoning", "reasoning_tokens"),
)


def _transport_families(tallies: Tallies) -> Iterator[Metric]:
    events = CounterMetricFamily(
        "tokenmux_events_sent", "Events written to clients.", labels=["transport", "type"]
    )
    sent = CounterMetricFamily(
        "tokenmux_bytes_sent", "Encoded event bytes written.", labels=["transport", "type"]
    )
    tallies_by_transport: Iterable[tuple[str, TransportTally]] = (
        ("ws", tallies.ws),
        ("sse", tallies.sse),
    )
    for transport, tally in tallies_by_transport:
        for type_, count in sorted(tally.events.items()):
            events.add_metric([transport, type_], count)
        for type_, size in sorted(tally.bytes.items()):
            sent.add_metric([transport, type_], size)
    yield events
    yield sent


def _live_families(app: web.Application) -> list[Metric]:
    """Everything read from live objects; runs on the event loop (no locks needed)."""
    tallies = app[TALLIES]
    connections: Connections = app[CONNECTIONS]
    outboxes: list[Outbox] = [c.outbox for c in connections]
    outboxes.extend(tallies.sse_streams)
    open_connections = GaugeMetricFamily(
        "tokenmux_open_connections", "Open client connections.", labels=["transport"]
    )
    open_connections.add_metric(["ws"], len(connections))
    open_connections.add_metric(["sse"], len(tallies.sse_streams))
    families: list[Metric] = [open_connections]
    families.append(
        GaugeMetricFamily(
            "tokenmux_live_sessions", "Sessions running now.", value=app[MANAGER].live_sessions
        )
    )
    families.append(
        GaugeMetricFamily(
            "tokenmux_outbox_queued_events",
            "Events queued for clients, summed over connections.",
            value=sum(len(o) for o in outboxes),
        )
    )
    families.append(
        GaugeMetricFamily(
            "tokenmux_outbox_queued_bytes_max",
            "The deepest outbound queue of any connection, in estimated bytes.",
            value=max((o.queued_bytes for o in outboxes), default=0),
        )
    )
    merged = tallies.ws.merged + tallies.sse.merged + sum(o.merged for o in outboxes)
    families.append(
        CounterMetricFamily(
            "tokenmux_chunks_merged",
            "Chunks appended to a queued chunk under backpressure.",
            value=merged,
        )
    )
    families.extend(_transport_families(tallies))
    families.extend(_store_families(app[MANAGER].store.health()))
    return families


def _store_families(health: dict[str, Any]) -> Iterator[Metric]:
    """The session store: whether it is reachable (Redis) and what it has done."""
    yield GaugeMetricFamily(
        "tokenmux_store_healthy",
        "1 while the session store is reachable (always 1 for the embedded memory store).",
        value=1 if health.get("healthy") else 0,
    )
    for key, value in sorted(health.items()):
        if isinstance(value, int) and not isinstance(value, bool) and key != "live_logs":
            yield CounterMetricFamily(
                f"tokenmux_store_{key}", f"Session store: {key.replace('_', ' ')}.", value=value
            )
    if "live_logs" in health:
        yield GaugeMetricFamily(
            "tokenmux_store_live_logs", "Replay logs open in the shared store.",
            value=health["live_logs"],
        )  # fmt: skip


class _Scrape:
    """One scrape: the registry, a snapshot of live state, and the process collector."""

    def __init__(self, metrics: AppMetrics, live: list[Metric]) -> None:
        self._metrics = metrics
        self._live = live

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics.registry.collect()
        yield from self._live
        yield from self._metrics.process.collect()


METRICS = web.AppKey("metrics", AppMetrics)


async def handle_metrics(request: web.Request) -> web.Response:
    """GET /metrics."""
    metrics = request.app[METRICS]
    scrape: Collector = _Scrape(metrics, _live_families(request.app))
    body = await asyncio.to_thread(generate_latest, scrape)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


async def _metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    metrics = app[METRICS]
    app[MANAGER].on_session_end(metrics.session_ended)
    yield


def install_metrics(app: web.Application) -> None:
    """Add the per-app tallies, the session-end listener and ``GET /metrics``.

    Call after the session manager's cleanup context is appended (it needs the manager).
    """
    tallies = Tallies()
    app[TALLIES] = tallies
    app[METRICS] = AppMetrics(tallies)
    app.cleanup_ctx.append(_metrics_ctx)
    app.router.add_get("/metrics", handle_metrics)
