"""Server-sent events framing (PROTOCOL.md section 4): the fixed bytes of the format."""

from __future__ import annotations

__all__ = ["DATA", "DONE", "END", "KEEPALIVE"]

DATA = b"data: "  # the one field of a block (no `event:`/`id:` on POST /api/stream)
END = b"\n\n"  # a block ends with a blank line; `\n` only, never `\r`
DONE = DATA + b"[DONE]" + END
KEEPALIVE = b": ping" + END  # a comment line: written by the transport on quiet streams
