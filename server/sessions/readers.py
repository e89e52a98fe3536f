"""Readers: more sinks of one session besides its owner's connection (PROTOCOL.md §12).

A session with readers writes to ``Readers``, which hands every envelope to the owner's
sink and to each ``ReaderSink``: every reader sees the same envelopes with the same seq.
The session merges (emitter.py) only by its owner's backpressure and only while every
queue still holds its newest chunk, so a fast reader never misses merged text.

Each reader's backpressure is its own: while a reader's queue lags, a chunk that follows
a chunk of the same kind still queued there is merged into it (protocol/merge.py) for that
reader alone. The merged event keeps the newest part's seq, so that reader sees seq jump
at a streamed event (docs/protocol-notes.md). A reader too slow even for that overflows
its own queue, and its connection is closed; the session and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable

from server.protocol.envelope import Envelope
from server.protocol.merge import MAX_MERGED_CHARS, can_merge, merge
from server.sessions.outbox import Outbox, Sink

__all__ = ["ReaderSink", "Readers"]

_MERGING = ("content_chunk", "reasoning_chunk")  # the kinds a reader's Outbox tracks


class ReaderSink:
    """One watching connection's share of a session: its queue, and its own merging."""

    __slots__ = ("_last", "_on_end", "outbox")

    def __init__(self, outbox: Outbox, on_end: Callable[[], None]) -> None:
        self.outbox = outbox
        self._on_end = on_end
        self._last: Envelope | None = None  # the newest event of the session queued here

    @property
    def lagging(self) -> bool:
        return self.outbox.lagging

    def send(self, envelope: Envelope) -> None:
        outbox, last = self.outbox, self._last
        if (
            outbox.lagging
            and last is not None
            and envelope["type"] in _MERGING
            and can_merge(last, envelope)
            and len(last["data"]["content"]) < MAX_MERGED_CHARS
            and outbox.holds(last)
        ):
            merged = self._last = merge([last, envelope])
            outbox.replace(last, merged)
            return
        self._last = envelope
        outbox.send(envelope)
        if envelope["type"] == "stream_end":
            self._on_end()

    def holds(self, envelope: Envelope) -> bool:
        return self._last is envelope and self.outbox.holds(envelope)

    def replace(self, queued: Envelope, merged: Envelope) -> None:
        self._last = merged
        self.outbox.replace(queued, merged)


class Readers:
    """A session's sink while it has readers: the owner's sink first, then every reader."""

    __slots__ = ("primary", "readers")

    def __init__(self, primary: Sink) -> None:
        self.primary = primary
        self.readers: tuple[ReaderSink, ...] = ()

    @property
    def lagging(self) -> bool:
        return self.primary.lagging  # the session merges for its owner only

    def add(self, reader: ReaderSink) -> None:
        self.readers = (*self.readers, reader)

    def remove(self, reader: ReaderSink) -> None:
        self.readers = tuple(r for r in self.readers if r is not reader)

    def send(self, envelope: Envelope) -> None:
        self.primary.send(envelope)
        for reader in self.readers:  # a tuple: a reader leaving at stream_end is safe
            reader.send(envelope)

    def holds(self, envelope: Envelope) -> bool:
        return self.primary.holds(envelope) and all(r.holds(envelope) for r in self.readers)

    def replace(self, queued: Envelope, merged: Envelope) -> None:
        self.primary.replace(queued, merged)
        for reader in self.readers:
            reader.replace(queued, merged)
