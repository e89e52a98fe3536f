"""What the server counts, kept as plain numbers where the work happens.

Nothing here touches Prometheus: the hot path only bumps ints in dicts, and
``transports/metrics.py`` turns these numbers into the ``GET /metrics`` page at scrape time.
There is no module-level state: every application owns one ``Tallies`` and every session
one ``SessionTally``.

Hooks for session code (retries and fallbacks happen inside the session's run)::

    record_provider_error(session.tally, provider="openai", code="provider_timeout")
    record_retry(session.tally, provider="openai")
    record_fallback(session.tally, from_provider="openai", to_provider="anthropic")

They only touch the session's own tally; the application's counters pick the numbers up
when the session ends (``Tallies.session_ended``, a ``manager.on_session_end`` listener).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "OpenQueue",
    "SessionTally",
    "Tallies",
    "TransportTally",
    "record_fallback",
    "record_provider_error",
    "record_retry",
]


@dataclass(slots=True)
class SessionTally:
    """Facts about one session that its end-of-session metrics and log line need."""

    ttft_s: float | None = None  # start to first chunk queued, monotonic seconds
    duration_s: float = 0.0  # start to stream_end, as stream_end reports it
    cancel_requested_at: float | None = None  # time.monotonic() of Session.cancel()
    error_code: str | None = None  # the code of the `error` event, when it failed
    # Tuples, empty by default: three lists per live session cost 168 bytes, for the rare
    # session that ever records one of these.
    provider_errors: tuple[tuple[str, str], ...] = ()  # (provider, code)
    retries: tuple[str, ...] = ()  # provider of each retried attempt
    fallbacks: tuple[tuple[str, str], ...] = ()  # (from, to)


def record_provider_error(tally: SessionTally, *, provider: str, code: str) -> None:
    """A provider attempt failed with ``code`` (whether or not it is retried)."""
    tally.provider_errors += ((provider, code),)


def record_retry(tally: SessionTally, *, provider: str) -> None:
    """The session is about to try ``provider`` again."""
    tally.retries += (provider,)


def record_fallback(tally: SessionTally, *, from_provider: str, to_provider: str) -> None:
    """The session hands its request from one provider to the next."""
    tally.fallbacks += ((from_provider, to_provider),)


class TransportTally:
    """Events and bytes sent on one transport, by event type. Bumped once per event."""

    __slots__ = ("bytes", "events", "merged")

    def __init__(self) -> None:
        self.events: defaultdict[str, int] = defaultdict(int)
        self.bytes: defaultdict[str, int] = defaultdict(int)
        self.merged = 0  # chunks merged into a queued one, from outboxes already closed


class OpenQueue(Protocol):
    """What /metrics reads of an open stream's queue (a sessions.outbox.Outbox)."""

    merged: int

    @property
    def queued_bytes(self) -> int: ...

    def __len__(self) -> int: ...


class Tallies:
    """The application's counters (one per app; read by the /metrics collector)."""

    def __init__(self) -> None:
        self.ws = TransportTally()
        self.sse = TransportTally()
