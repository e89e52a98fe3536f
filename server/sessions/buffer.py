"""ReplayBuffer: a session's recent events, for resume after reconnect (PROTOCOL.md §6).

Pure and synchronous. It holds the same envelope objects that were queued for sending; a
chunk merged under backpressure replaces its unmerged self here too, so the replay matches
what a connected client would have received.
"""

from __future__ import annotations

from collections import deque

from server.protocol.envelope import Envelope
from server.sessions.outbox import Sink
from server.sessions.store.base import EventLog

__all__ = ["ReplayBuffer", "ReplayingSink"]


class ReplayBuffer:
    """The last ``capacity`` events of one session, in seq order."""

    def __init__(self, capacity: int) -> None:
        self._events: deque[Envelope] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._events)

    def append(self, envelope: Envelope) -> None:
        self._events.append(envelope)

    def replace(self, newest: Envelope, merged: Envelope) -> None:
        """Put ``merged`` in place of the newest event, if that is ``newest``."""
        if self._events and self._events[-1] is newest:
            self._events[-1] = merged

    @property
    def first_seq(self) -> int | None:
        return self._events[0]["seq"] if self._events else None

    def after(self, seq: int) -> tuple[list[Envelope], bool]:
        """Events with seq > ``seq``, and whether the buffer reached back far enough."""
        events = [event for event in self._events if event["seq"] > seq]
        first = self.first_seq
        complete = first is None or first <= seq + 1
        return events, complete

    def length_before(self, events: list[Envelope], total: int) -> int:
        """Code points of content sent before ``events`` (``total`` is the length now)."""
        for event in events:
            if event["type"] == "content_chunk":
                data = event["data"]
                return int(data["accumulated_length"]) - len(data["content"])
        return total


class ReplayingSink:
    """The sink a session writes to: records into its ReplayBuffer, forwards to a transport.

    ``target`` is swapped when the session detaches (transport gone) or is resumed on a new
    connection; the swap and the replay happen in one synchronous step, so nothing is lost
    or sent twice.

    ``log``, when the session is shared with other nodes, records every event too. A chunk
    merges only while every queue still holds it: once the log has written it out, new
    text starts a new chunk, so the log and the client see the same events.
    """

    def __init__(self, buffer: ReplayBuffer, target: Sink, log: EventLog | None = None) -> None:
        self.buffer = buffer
        self.target = target
        self.log = log

    @property
    def lagging(self) -> bool:
        return self.target.lagging

    def send(self, envelope: Envelope) -> None:
        self.buffer.append(envelope)
        if self.log is not None:
            self.log.append(envelope)
        self.target.send(envelope)

    def holds(self, envelope: Envelope) -> bool:
        log = self.log
        return self.target.holds(envelope) and (log is None or log.holds(envelope))

    def replace(self, queued: Envelope, merged: Envelope) -> None:
        self.target.replace(queued, merged)
        self.buffer.replace(queued, merged)
        if self.log is not None:
            self.log.replace(queued, merged)
