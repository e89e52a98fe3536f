"""protocol/frames.py and the WebSocket encoders: exact bytes, checked against an
independent implementation (websockets)."""

from __future__ import annotations

import msgpack
import orjson
import pytest
from websockets.frames import Frame, Opcode

from server.metrics import TransportTally
from server.protocol.envelope import Envelope
from server.protocol.frames import OP_BINARY, OP_TEXT, FrameEncoder, header
from server.protocol.ws_json import WsJsonEncoder
from server.protocol.ws_msgpack import WsMsgpackEncoder


def raw(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """Frame one ready payload with the production encoder (the envelope is the payload)."""
    encoder = FrameEncoder(lambda envelope: envelope["payload"], opcode, TransportTally())
    return encoder.encode([{"type": "raw", "payload": payload}])


def test_short_text_frame() -> None:
    """RFC 6455 section 5.7's unmasked "Hello" example."""
    assert raw(b"Hello") == b"\x81\x05Hello"


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 2047, 2048, 65535, 65536, 70000])
@pytest.mark.parametrize(
    ("opcode", "ws_opcode"), [(OP_TEXT, Opcode.TEXT), (OP_BINARY, Opcode.BINARY)]
)
def test_every_length_class_matches_websockets(length: int, opcode: int, ws_opcode: Opcode) -> None:
    """2, 4 and 10 byte headers at each boundary, byte for byte as websockets frames them."""
    payload = b"x" * length
    expected = Frame(ws_opcode, payload).serialize(mask=False)
    assert raw(payload, opcode) == expected
    assert header(length, opcode) + payload == expected


EVENTS: list[Envelope] = [
    {"type": "content_chunk", "session": "s", "seq": 1, "timestamp": 1, "data": {"a": 1}},
    {"type": "metadata", "session": "s", "seq": 2, "timestamp": 2, "data": {"k": "y" * 300}},
    {"type": "pong", "timestamp": 3, "data": {}},
]


def test_a_batch_is_the_frames_in_order() -> None:
    tally = TransportTally()
    encoder = WsJsonEncoder(tally)
    frames = [Frame(Opcode.TEXT, orjson.dumps(e)).serialize(mask=False) for e in EVENTS]
    assert encoder.encode(EVENTS) == b"".join(frames)
    assert encoder.encode(EVENTS[:1]) == frames[0]  # a batch of one takes a shorter path
    assert dict(tally.events) == {"content_chunk": 2, "metadata": 1, "pong": 1}
    assert tally.bytes["pong"] == len(orjson.dumps(EVENTS[2]))
    assert encoder.finish() == b""


def test_msgpack_frames_are_binary_and_carry_the_same_envelopes() -> None:
    encoder = WsMsgpackEncoder(TransportTally())
    expected = b"".join(
        Frame(Opcode.BINARY, msgpack.packb(e, use_bin_type=True)).serialize(mask=False)
        for e in EVENTS
    )
    assert encoder.encode(EVENTS) == expected
    assert encoder.finish() == b""
