"""Server-to-client WebSocket framing (RFC 6455 section 5.2) for a batch of messages.

aiohttp writes one frame per ``send_str()``, which is one ``send()`` system call per event:
about half the cost of streaming a token. The writer instead frames everything queued at
once and hands the transport a single buffer. Server frames are never masked (section 5.3)
and we never compress or fragment, so a frame is a 2, 4 or 10 byte header plus the payload.
Pure functions on bytes, like the rest of ``protocol/``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = ["OP_BINARY", "OP_TEXT", "frame", "frames", "header", "short_headers"]

OP_TEXT = 0x1
OP_BINARY = 0x2
_FIN = 0x80

_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack

# Most events are under 126 bytes of header-length class: their headers are precomputed.
_SHORT = {
    opcode: [bytes((_FIN | opcode, length)) for length in range(126)]
    for opcode in (OP_TEXT, OP_BINARY)
}


def header(length: int, opcode: int = OP_TEXT) -> bytes:
    """The header of an unmasked, unfragmented frame with a ``length``-byte payload."""
    if length < 126:
        return _SHORT[opcode][length]
    if length < 65536:
        return _LEN16(_FIN | opcode, 126, length)
    return _LEN64(_FIN | opcode, 127, length)


def short_headers(opcode: int) -> list[bytes]:
    """Headers for payloads under 126 bytes, indexed by length (the writer's fast path)."""
    return _SHORT[opcode]


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One unmasked, unfragmented frame carrying ``payload``."""
    return frames([payload], opcode)


def frames(payloads: Sequence[bytes], opcode: int = OP_TEXT) -> bytes:
    """Every payload as its own frame, concatenated in order into one buffer."""
    short = _SHORT[opcode]
    first = _FIN | opcode
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        length = len(payload)
        if length < 126:
            append(short[length])
        elif length < 65536:
            append(_LEN16(first, 126, length))
        else:
            append(_LEN64(first, 127, length))
        append(payload)
    return b"".join(parts)
