"""SSE encoders on exact bytes."""

from __future__ import annotations

from server.metrics import TransportTally
from server.protocol.envelope import Envelope
from server.protocol.sse import DONE, KEEPALIVE
from server.protocol.sse_data import SseDataEncoder
from server.protocol.sse_ids import SseIdEncoder

EVENT: Envelope = {"type": "metadata", "session": "s", "seq": 7, "timestamp": 1, "data": {}}
COMPACT = b'{"type":"metadata","session":"s","seq":7,"timestamp":1,"data":{}}'


def test_data_block_is_one_line_and_a_blank_line() -> None:
    tally = TransportTally()
    encoder = SseDataEncoder(tally)
    assert encoder.encode([EVENT]) == b"data: " + COMPACT + b"\n\n"
    assert encoder.encode([EVENT, EVENT]) == (b"data: " + COMPACT + b"\n\n") * 2
    assert tally.events["metadata"] == 3 and tally.bytes["metadata"] == 3 * len(COMPACT)
    assert encoder.finish() == DONE


def test_done_and_keepalive_are_fixed_bytes() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert KEEPALIVE == b": ping\n\n"


def test_resume_blocks_carry_an_id_line() -> None:
    encoder = SseIdEncoder(TransportTally())
    block = b"id: 7\ndata: " + COMPACT + b"\n\n"
    assert encoder.encode([EVENT]) == block
    assert encoder.encode([EVENT, EVENT]) == block * 2
    assert encoder.finish() == DONE
