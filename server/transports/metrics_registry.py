"""The application's Prometheus registry and the session-level metrics in it.

Updated once per session by a ``manager.on_session_end`` listener (``session_ended``), never
per event; transports/metrics.py adds the live state at scrape time and serves the page.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.process_collector import ProcessCollector

from server.metrics import Tallies
from server.sessions.session import Session

__all__ = ["AppMetrics"]

# Time to first token and durations of LLM streams: tens of ms to minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Cancel to stream_end is expected in the sub-millisecond to millisecond range.
_CANCEL_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


_TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("cached_input", "cached_input_tokens"),
    ("output", "output_tokens"),
    ("reasoning", "reasoning_tokens"),
)


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
        self.readers = Histogram(
            "tokenmux_session_readers",
            "Readers (watch) a session had at once at most, besides its owner, at its end.",
            buckets=(0, 1, 2, 4, 8, 16, 64),
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
        self.readers.observe(session.most_readers)
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
