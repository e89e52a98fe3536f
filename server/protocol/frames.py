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

# Headers for every payload length below _PRECOMPUTED are built once (2 bytes under 126,
# 4 bytes above): nearly every event is in that range, so the writer only indexes a list.
_PRECOMPUTED = 2048
_SHORT = {
    opcode: [bytes((_FIN | opcode, n)) for n in range(126)]
    + [_LEN16(_FIN | opcode, 126, n) for n in range(126, _PRECOMPUTED)]
    for opcode in (OP_TEXT, OP_BINARY)
}


def header(length: int, opcode: int = OP_TEXT) -> bytes:
    """The header of an unmasked, unfragmented frame with a ``length``-byte payload."""
    if length < _PRECOMPUTED:
        return _SHORT[opcode][length]
    if length < 65536:
        return _LEN16(_FIN | opcode, 126, length)
    return _LEN64(_FIN | opcode, 127, length)


def short_headers(opcode: int) -> list[bytes]:
    """Headers indexed by payload length, for lengths below ``len()`` of the list."""
    return _SHORT[opcode]


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One unmasked, unfragmented frame carrying ``payload``."""
    return frames([payload], opcode)


def frames(payloads: Sequence[bytes], opcode: int = OP_TEXT) -> bytes:
    """Every payload as its own frame, concatenated in order into one buffer."""
    parts: list[bytes] = []
    for payload in payloads:
        parts += (header(len(payload), opcode), payload)
    return b"".join(parts)
