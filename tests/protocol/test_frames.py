"""protocol/frames.py: exact bytes, checked against an independent implementation."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from server.protocol.frames import OP_BINARY, OP_TEXT, frame, frames, header


def test_short_text_frame() -> None:
    """RFC 6455 section 5.7's unmasked "Hello" example."""
    assert frame(b"Hello") == b"\x81\x05Hello"


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 2047, 2048, 65535, 65536, 70000])
@pytest.mark.parametrize(
    ("opcode", "ws_opcode"), [(OP_TEXT, Opcode.TEXT), (OP_BINARY, Opcode.BINARY)]
)
def test_every_length_class_matches_websockets(length: int, opcode: int, ws_opcode: Opcode) -> None:
    """2, 4 and 10 byte headers at each boundary, byte for byte as websockets frames them."""
    payload = b"x" * length
    expected = Frame(ws_opcode, payload).serialize(mask=False)
    assert frame(payload, opcode) == expected
    assert header(length, opcode) + payload == expected


def test_a_batch_is_the_frames_in_order() -> None:
    payloads = [b'{"a":1}', b"y" * 300, b""]
    assert frames(payloads) == b"".join(frame(p) for p in payloads)
