"""Server-sent events framing (PROTOCOL.md section 4): pure functions on bytes."""

from __future__ import annotations

__all__ = ["DATA", "DONE", "END", "KEEPALIVE", "sse_data", "sse_event_with_id"]

DATA = b"data: "  # the one field of a block (no `event:`/`id:` on POST /api/stream)
END = b"\n\n"  # a block ends with a blank line; `\n` only, never `\r`
DONE = DATA + b"[DONE]" + END
KEEPALIVE = b": ping" + END


def sse_data(payload: bytes) -> bytes:
    """One ``data:`` line and a blank line. ``payload`` is compact JSON: it has no newline."""
    return DATA + payload + END


def sse_event_with_id(event_id: int, payload: bytes) -> bytes:
    """A block with an ``id:`` line, for EventSource resume streams (Last-Event-ID)."""
    return b"id: %d\ndata: %s\n\n" % (event_id, payload)
