"""Server-sent events framing (PROTOCOL.md section 4): pure functions on bytes."""

from __future__ import annotations

__all__ = ["DONE", "KEEPALIVE", "sse_data", "sse_event_with_id"]

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": ping\n\n"


def sse_data(payload: bytes) -> bytes:
    """One ``data:`` line and a blank line. ``payload`` is compact JSON: it has no newline."""
    return b"data: " + payload + b"\n\n"


def sse_event_with_id(event_id: int, payload: bytes) -> bytes:
    """A block with an ``id:`` line, for EventSource resume streams (Last-Event-ID)."""
    return b"id: %d\ndata: %s\n\n" % (event_id, payload)
