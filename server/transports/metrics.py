"""GET /metrics: the Prometheus text format, from one registry per application.

Three sources, so the hot path never calls into prometheus_client:

- session-level counters and histograms (ended by reason, time to first token, duration,
  provider errors, retries, fallbacks, cancel latency), updated once per session by a
  ``manager.on_session_end`` listener;
- live state read at scrape time: open connections, live sessions, outbound queue depth,
  the per-event ``Tallies`` (events and bytes sent by type, chunks merged) and the content
  cache's counters;
- process CPU and memory, read from /proc in a worker thread (file reads block).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.cache.base import CacheStats
from server.metrics import OpenQueue, Tallies, TransportTally
from server.state import CONNECTIONS, MANAGER, METRICS, SSE_STREAMS, TALLIES, Connections
from server.transports.metrics_registry import AppMetrics

__all__ = ["AppMetrics", "install_metrics"]


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
    outboxes: list[OpenQueue] = [c.outbox for c in connections]
    sse_streams = app[SSE_STREAMS].open
    outboxes.extend(stream.outbox for stream in sse_streams)
    open_connections = GaugeMetricFamily(
        "tokenmux_open_connections", "Open client connections.", labels=["transport"]
    )
    open_connections.add_metric(["ws"], len(connections))
    open_connections.add_metric(["sse"], len(sse_streams))
    families: list[Metric] = [open_connections]
    families.append(
        GaugeMetricFamily(
            "tokenmux_live_sessions", "Sessions running now.", value=app[MANAGER].live_sessions
        )
    )
    families.append(
        GaugeMetricFamily(
            "tokenmux_readers", "Readers (watch) attached here now.", value=app[MANAGER].readers
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
    cache = app[MANAGER].providers.cache
    if cache is not None:
        families.extend(_cache_families(cache.stats))
    return families


def _cache_families(stats: CacheStats) -> Iterator[Metric]:
    """The content cache: hits, misses and what it holds (config ``cache``)."""
    for name, help_text in (
        ("hits", "Requests answered from the content cache."),
        ("misses", "Cacheable requests sent to the provider."),
        ("stores", "Finished streams stored in the content cache."),
        ("evictions", "Entries evicted (least recently used) to stay within the limits."),
        ("errors", "Content cache round trips to Redis that failed."),
    ):
        yield CounterMetricFamily(f"tokenmux_cache_{name}", help_text, value=getattr(stats, name))
    yield GaugeMetricFamily("tokenmux_cache_entries", "Entries in the content cache.",
                            value=stats.entries)  # fmt: skip
    yield GaugeMetricFamily("tokenmux_cache_bytes", "Bytes of events in the content cache.",
                            value=stats.bytes)  # fmt: skip


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
