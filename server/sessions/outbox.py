"""Outbox: the bounded queue between sessions and one transport writer (PROTOCOL.md §7).

Sessions call ``send()`` without awaiting; one writer task per connection calls ``drain()``
and does the I/O. The outbox never changes an envelope. While the reader lags (more than
``merge_bytes`` queued and the transport pushing back) it reports ``lagging``, and a
session then merges new text into its newest chunk and ``replace()``s the queued chunk
with the merged one (sessions/emitter.py), so a slow reader costs the server memory for
its text only, not per token. Past ``max_bytes`` the outbox overflows: it drops
everything, refuses further events and calls ``on_overflow`` so the transport can close
the connection (1013).

Call order: ``send`` after ``close()`` or an overflow is accepted and discarded, because a
session may still be finishing when its connection goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from server.protocol.envelope import Envelope

__all__ = ["CollectingSink", "DetachedSink", "Outbox", "Sink"]

_CHUNK_OVERHEAD = 96  # bytes of envelope around a chunk's text, roughly, once encoded
_EVENT_SIZE = 256
_CONTENT_CHUNK = "content_chunk"
_REASONING_CHUNK = "reasoning_chunk"


class Sink(Protocol):
    """All a session knows of its transport: a queue of envelopes it never changes."""

    @property
    def lagging(self) -> bool:
        """True while the reader falls behind: new text should merge, not queue."""
        ...

    def send(self, envelope: Envelope) -> None:
        """Queue one event. Never blocks; discarded once the transport is gone."""
        ...

    def holds(self, envelope: Envelope) -> bool:
        """True while ``envelope``, its session's newest event, waits in every queue here
        (not sent, written or dropped yet): only then may it be replaced."""
        ...

    def replace(self, queued: Envelope, merged: Envelope) -> None:
        """Put ``merged`` where ``queued`` waits; holds(queued) must be true."""
        ...


class Outbox:
    """Per-connection queue of envelopes with a merge signal and a hard cap."""

    # One per WebSocket connection and one per SSE stream: slots, not a __dict__.
    __slots__ = (
        "_bytes",
        "_lag_at",
        "_max_bytes",
        "_merge_bytes",
        "_newest_chunk",
        "_on_overflow",
        "_on_ready",
        "_paused",
        "_queue",
        "closed",
        "lagging",
        "merged",
    )

    def __init__(
        self,
        *,
        merge_bytes: int,
        max_bytes: int,
        on_ready: Callable[[], None],
        on_overflow: Callable[[], None],
    ) -> None:
        # A list, swapped out whole on drain(): cheaper than a deque per event, and an empty
        # one costs 56 bytes where a deque always holds a 64-slot block (SSE has one per stream).
        self._queue: list[Envelope] = []
        self._bytes = 0
        # Where each session's newest queued chunk sits in _queue (positions hold until
        # drain() swaps the list out), so replace() finds it without a search.
        self._newest_chunk: dict[str, int] = {}
        self._merge_bytes = merge_bytes
        self._max_bytes = max_bytes
        self._on_ready = on_ready
        self._on_overflow = on_overflow
        self.closed = False
        self.merged = 0  # chunks merged into an earlier one (an observable for tests/metrics)
        # Past merge_bytes while the transport pushes back, or past half the hard cap. A
        # plain attribute kept true on every change: sessions read it once per token.
        self.lagging = False
        self._paused = False
        self._lag_at = max(merge_bytes, max_bytes // 2)

    @property
    def paused(self) -> bool:
        """Set by the writer while the transport pushes back: only then does a queue past
        merge_bytes mean the client reads slower than the providers write. A healthy
        connection's queue can pass it within one turn of the loop and is drained next."""
        return self._paused

    @paused.setter
    def paused(self, paused: bool) -> None:
        self._paused = paused
        merge_bytes = self._merge_bytes
        self._lag_at = merge_bytes if paused else max(merge_bytes, self._max_bytes // 2)
        self.lagging = not self.closed and self._bytes >= self._lag_at

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._queue)

    def send(self, envelope: Envelope) -> None:
        if self.closed:
            return
        queue = self._queue
        kind = envelope["type"]
        if kind in (_CONTENT_CHUNK, _REASONING_CHUNK):  # the kinds that merge
            self._newest_chunk[envelope["session"]] = len(queue)
            size = len(envelope["data"]["content"]) + _CHUNK_OVERHEAD
        else:
            size = _EVENT_SIZE
        # The writer drains the whole queue per wake-up, so it needs waking only when the
        # queue goes from empty to not empty: one Event.set() per batch, not per event.
        wake = not queue
        queue.append(envelope)
        # The per-token path: _grow() inlined.
        queued = self._bytes = self._bytes + size
        if queued > self._max_bytes:
            self._overflow()
        else:
            self.lagging = queued >= self._lag_at
            if wake:
                self._on_ready()

    def holds(self, envelope: Envelope) -> bool:
        position = self._newest_chunk.get(envelope["session"])
        return position is not None and self._queue[position] is envelope

    def replace(self, queued: Envelope, merged: Envelope) -> None:
        self._queue[self._newest_chunk[queued["session"]]] = merged
        self.merged += 1
        self._grow(len(merged["data"]["content"]) - len(queued["data"]["content"]))

    def drain(self) -> list[Envelope]:
        """Everything queued, oldest first; the queue is empty afterwards."""
        batch = self._queue
        self._queue = []
        self._newest_chunk.clear()
        self._bytes = 0
        self.lagging = False
        return batch

    def close(self) -> None:
        """Discard what is queued and accept nothing more."""
        self.closed = True
        self._queue.clear()
        self._newest_chunk.clear()
        self._bytes = 0
        self.lagging = False

    def _grow(self, size: int) -> None:
        queued = self._bytes = self._bytes + size
        if queued > self._max_bytes:
            self._overflow()
        else:
            self.lagging = queued >= self._lag_at

    def _overflow(self) -> None:
        self._on_overflow()
        self.close()


class CollectingSink:
    """A sink that keeps every event in memory (the non-streaming /api/completion path)."""

    lagging = False  # nothing waits on a reader: never merge

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def send(self, envelope: Envelope) -> None:
        self.events.append(envelope)

    def holds(self, envelope: Envelope) -> bool:
        return False

    def replace(self, queued: Envelope, merged: Envelope) -> None:
        raise AssertionError("nothing is queued here to replace")


class DetachedSink:
    """Where a detached session writes while no transport listens (its buffer records)."""

    lagging = False

    def send(self, envelope: Envelope) -> None:
        return None

    def holds(self, envelope: Envelope) -> bool:
        return False

    def replace(self, queued: Envelope, merged: Envelope) -> None:
        raise AssertionError("nothing is queued here to replace")
