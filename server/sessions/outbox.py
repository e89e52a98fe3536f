"""Outbox: the bounded queue between sessions and one transport writer (PROTOCOL.md §7).

Sessions call ``send()``/``send_text()`` without awaiting; one writer task per connection
calls ``drain()`` and does the I/O. Under pressure (more than ``merge_bytes`` queued) new
text of a session is appended to that session's newest queued chunk instead of queueing
another event, so a slow reader costs the server memory for its text only, not per token.
Past ``max_bytes`` the outbox overflows: it drops everything, refuses further events and
calls ``on_overflow`` so the transport can close the connection (1013).

Call order: ``send*`` after ``close()`` or an overflow is accepted and discarded, because a
session may still be finishing when its connection goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from server.protocol.envelope import Envelope
from server.protocol.stream import SessionStream

__all__ = ["MAX_MERGED_CHARS", "CollectingSink", "DetachedSink", "Outbox", "Sink"]

_CHUNK_OVERHEAD = 96  # bytes of envelope around a chunk's text, roughly, once encoded
_EVENT_SIZE = 256
MAX_MERGED_CHARS = 16_384  # a merged chunk grows to this, then the next text starts a new one


class Sink(Protocol):
    """All a session knows of its transport."""

    def send(self, envelope: Envelope) -> None:
        """Queue one event. Never blocks; discarded once the transport is gone."""
        ...

    def send_text(self, stream: SessionStream, text: str) -> Envelope | None:
        """Queue ``text`` as a new chunk of ``stream``, or merge it into a queued one.

        Returns the new chunk (queued, or made and dropped by a closed transport), or None
        when the text was merged into a queued chunk.
        """
        ...


class Outbox:
    """Per-connection queue of envelopes with chunk merging and a hard cap."""

    # One per WebSocket connection and one per SSE stream: slots, not a __dict__.
    __slots__ = (
        "_bytes",
        "_max_bytes",
        "_merge_bytes",
        "_newest_chunk",
        "_on_overflow",
        "_on_ready",
        "_queue",
        "closed",
        "merged",
        "paused",
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
        self._newest_chunk: dict[str, Envelope] = {}
        self._merge_bytes = merge_bytes
        self._max_bytes = max_bytes
        self._on_ready = on_ready
        self._on_overflow = on_overflow
        self.closed = False
        self.merged = 0  # chunks merged into an earlier one (an observable for tests/metrics)
        # Set by the writer while the transport pushes back: only then does a queue past
        # merge_bytes mean the client reads slower than the providers write. A healthy
        # connection's queue can pass it within one turn of the loop and is drained next.
        self.paused = False

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._queue)

    def send(self, envelope: Envelope) -> None:
        if self.closed:
            return
        session: str | None = envelope.get("session")
        if session is not None and envelope["type"] == "content_chunk":
            self._newest_chunk[session] = envelope
            size = len(envelope["data"]["content"]) + _CHUNK_OVERHEAD
        else:
            if session is not None:
                self._newest_chunk.pop(session, None)
            size = _EVENT_SIZE
        self._push(envelope, size)

    def send_text(self, stream: SessionStream, text: str) -> Envelope | None:
        # The per-token path: no re-inspection of the envelope we just built.
        if self.closed:
            # Not queued, but made: the session's record and its replay buffer stay whole
            # (a resume after this connection went away must see no hole in seq).
            return stream.chunk(text)
        if self._bytes >= self._merge_bytes and (
            self.paused or self._bytes >= self._max_bytes // 2
        ):
            pending = self._newest_chunk.get(stream.session_id)
            # Cap a merged chunk: each merge copies its text, so unbounded ones go quadratic.
            if pending is not None and len(pending["data"]["content"]) < MAX_MERGED_CHARS:
                stream.extend_chunk(pending, text)
                self.merged += 1
                self._grow(len(text))
                return None
        envelope = stream.chunk(text)
        self._newest_chunk[stream.session_id] = envelope
        self._push(envelope, len(text) + _CHUNK_OVERHEAD)
        return envelope

    def _push(self, envelope: Envelope, size: int) -> None:
        # The writer drains the whole queue per wake-up, so it needs waking only when the
        # queue goes from empty to not empty: one Event.set() per batch, not per event.
        wake = not self._queue
        self._queue.append(envelope)
        self._bytes += size
        if self._bytes > self._max_bytes:
            self._on_overflow()
            self.close()
        elif wake:
            self._on_ready()

    def drain(self) -> list[Envelope]:
        """Everything queued, oldest first; the queue is empty afterwards."""
        batch = self._queue
        self._queue = []
        self._newest_chunk.clear()
        self._bytes = 0
        return batch

    def close(self) -> None:
        """Discard what is queued and accept nothing more."""
        self.closed = True
        self._queue.clear()
        self._newest_chunk.clear()
        self._bytes = 0

    def _grow(self, size: int) -> None:
        self._bytes += size
        if self._bytes > self._max_bytes:
            self._on_overflow()
            self.close()


class CollectingSink:
    """A sink that keeps every event in memory (the non-streaming /api/completion path)."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def send(self, envelope: Envelope) -> None:
        self.events.append(envelope)

    def send_text(self, stream: SessionStream, text: str) -> Envelope | None:
        envelope = stream.chunk(text)
        self.events.append(envelope)
        return envelope


class DetachedSink:
    """Where a detached session writes while no transport listens (its buffer records)."""

    def send(self, envelope: Envelope) -> None:
        return None

    def send_text(self, stream: SessionStream, text: str) -> Envelope | None:
        return stream.chunk(text)
