"""Server-to-client WebSocket framing (RFC 6455 section 5.2), and the frame encoder.

aiohttp writes one frame per ``send_str()``, which is one ``send()`` system call per event:
about half the cost of streaming a token. The writer instead frames everything queued at
once and hands the transport a single buffer. Server frames are never masked (section 5.3)
and we never compress or fragment, so a frame is a 2, 4 or 10 byte header plus the payload.
Pure functions on bytes, like the rest of ``protocol/``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from server.protocol.encoding import Tally
from server.protocol.envelope import Envelope

__all__ = ["OP_BINARY", "OP_TEXT", "FrameEncoder", "header", "short_headers"]

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


class FrameEncoder:
    """Each envelope as one frame of ``opcode`` carrying ``dumps(envelope)``, in one buffer.

    The base of the WebSocket encoders (ws_json.py, ws_msgpack.py), which pick the payload
    encoding and the opcode. It keeps no per-connection state, so ``finish()`` is empty.
    """

    __slots__ = ("_dumps", "_opcode", "_short", "_tally")

    def __init__(self, dumps: Callable[[Envelope], bytes], opcode: int, tally: Tally) -> None:
        self._dumps = dumps
        self._opcode = opcode
        self._short = _SHORT[opcode]
        self._tally = tally

    def encode(self, batch: Sequence[Envelope]) -> bytes:
        """Encode, frame and count a batch in one pass: this loop runs once per event.

        Each payload is copied into one buffer and dropped at once. orjson returns every
        result in a fresh 4 KiB allocation: freed straight away, malloc hands the same
        block to the next call; kept alive for a join, every call maps new memory (8x
        slower). A batch of one (a reader that keeps up) skips the buffer.
        """
        dumps, short, opcode = self._dumps, self._short, self._opcode
        limit = len(short)
        sent_events, sent_bytes = self._tally.events, self._tally.bytes
        if len(batch) == 1:
            envelope = batch[0]
            payload = dumps(envelope)
            size = len(payload)
            type_ = envelope["type"]
            sent_events[type_] += 1
            sent_bytes[type_] += size
            return (short[size] if size < limit else header(size, opcode)) + payload
        buffer = bytearray()
        for envelope in batch:
            payload = dumps(envelope)
            size = len(payload)
            buffer += short[size] if size < limit else header(size, opcode)
            buffer += payload
            type_ = envelope["type"]
            sent_events[type_] += 1
            sent_bytes[type_] += size
        return bytes(buffer)

    def finish(self) -> bytes:
        return b""
