"""Emitter: a session's one way out, where it decides event boundaries and merging.

The session's SessionStream builds every envelope (seq, index, lengths); the emitter queues
it on the session's sink. Under backpressure (the sink says it is ``lagging``) new text
does not become one more event: while the session's newest event is a chunk of the same
kind (content or reasoning) that every queue still holds, the emitter merges the text into
it (SessionStream.merge_chunk, which spends no seq) and has the sink swap the queued chunk
for the merged one. Envelopes are
never changed once queued, so every queue (connection outbox, replay buffer, shared log)
holds the same events, and the client's and the log's views cannot drift apart.
"""

from __future__ import annotations

from server.protocol.envelope import Envelope
from server.protocol.merge import MAX_MERGED_CHARS
from server.protocol.stream import SessionStream
from server.sessions.outbox import Sink

__all__ = ["Emitter"]


class Emitter:
    """Queues one session's events on its sink, merging text while the reader lags."""

    __slots__ = ("_newest_chunk", "sink", "stream")

    def __init__(self, stream: SessionStream, sink: Sink) -> None:
        self.stream = stream
        self.sink = sink
        # The session's newest event when it is a chunk: the only one text can merge into.
        self._newest_chunk: Envelope | None = None

    def send(self, envelope: Envelope) -> None:
        """Queue an event that is not text (start, metadata, the end)."""
        self._newest_chunk = None
        self.sink.send(envelope)

    def text(self, text: str) -> Envelope | None:
        """Queue ``text`` as a new chunk and return it, or merge it and return None."""
        # The per-token path: one attribute test while the reader keeps up.
        sink = self.sink
        if sink.lagging and self._merged("content_chunk", text):
            return None
        envelope = self.stream.chunk(text)
        sink.send(envelope)
        # Kept only while the reader lags, the one time text may merge into it: an idle
        # session holding its last chunk (two dicts) would cost every live session.
        self._newest_chunk = envelope if sink.lagging else None
        return envelope

    def reasoning(self, text: str) -> Envelope | None:
        """Queue ``text`` as a new reasoning chunk, or merge it, as ``text()`` does."""
        sink = self.sink
        if sink.lagging and self._merged("reasoning_chunk", text):
            return None
        envelope = self.stream.reasoning(text)
        sink.send(envelope)
        self._newest_chunk = envelope if sink.lagging else None  # as in text()
        return envelope

    def _merged(self, kind: str, text: str) -> bool:
        """Merge ``text`` into the newest event if it is a ``kind`` chunk still queued."""
        newest, sink = self._newest_chunk, self.sink
        if (
            newest is None
            or newest["type"] != kind
            or len(newest["data"]["content"]) >= MAX_MERGED_CHARS
            or not sink.holds(newest)
        ):
            return False
        merged = self._newest_chunk = self.stream.merge_chunk(newest, text)
        sink.replace(newest, merged)
        return True
