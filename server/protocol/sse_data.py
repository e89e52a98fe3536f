"""SSE ``data:`` lines (POST /api/stream): one ``data: <compact JSON>`` block per event."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from server.protocol.encoding import Tally
from server.protocol.envelope import Envelope
from server.protocol.sse import DATA, DONE, END

__all__ = ["SseDataEncoder"]


class SseDataEncoder:
    """Each envelope as ``data: <JSON>`` and a blank line; ``data: [DONE]`` at the end."""

    __slots__ = ("_tally",)

    def __init__(self, tally: Tally) -> None:
        self._tally = tally

    def encode(self, batch: Sequence[Envelope]) -> bytes:
        # Each payload is copied into one buffer and dropped at once (orjson's results are
        # 4 KiB allocations: reused when freed straight away, slow when many are alive).
        dumps, sent_events, sent_bytes = orjson.dumps, self._tally.events, self._tally.bytes
        if len(batch) == 1:  # a reader that keeps up: no buffer
            event = batch[0]
            payload = dumps(event)
            sent_events[event["type"]] += 1
            sent_bytes[event["type"]] += len(payload)
            return b"data: %b\n\n" % payload
        buffer = bytearray()
        for event in batch:
            payload = dumps(event)
            buffer += DATA
            buffer += payload
            buffer += END
            sent_events[event["type"]] += 1
            sent_bytes[event["type"]] += len(payload)
        return bytes(buffer)

    def finish(self) -> bytes:
        return DONE
