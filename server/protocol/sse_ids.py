"""SSE with ``id:`` lines (the EventSource resume route): ``id: <seq>`` before each block,
so a reconnecting EventSource sends the last one back as ``Last-Event-ID``."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from server.protocol.encoding import Tally
from server.protocol.envelope import Envelope
from server.protocol.sse import DATA, DONE, END

__all__ = ["SseIdEncoder"]


class SseIdEncoder:
    """Each envelope as ``id: <seq>``, ``data: <JSON>`` and a blank line; then ``[DONE]``."""

    __slots__ = ("_tally",)

    def __init__(self, tally: Tally) -> None:
        self._tally = tally

    def encode(self, batch: Sequence[Envelope]) -> bytes:
        dumps, sent_events, sent_bytes = orjson.dumps, self._tally.events, self._tally.bytes
        if len(batch) == 1:  # a reader that keeps up: no buffer
            event = batch[0]
            payload = dumps(event)
            sent_events[event["type"]] += 1
            sent_bytes[event["type"]] += len(payload)
            return b"id: %d\ndata: %b\n\n" % (event["seq"], payload)
        buffer = bytearray()
        for event in batch:
            payload = dumps(event)
            buffer += b"id: %d\n" % event["seq"]
            buffer += DATA
            buffer += payload
            buffer += END
            sent_events[event["type"]] += 1
            sent_bytes[event["type"]] += len(payload)
        return bytes(buffer)

    def finish(self) -> bytes:
        return DONE
