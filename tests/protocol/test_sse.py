"""SSE framing on exact bytes."""

from __future__ import annotations

from server.protocol.sse import DONE, KEEPALIVE, sse_data, sse_event_with_id


def test_data_block_is_one_line_and_a_blank_line() -> None:
    assert sse_data(b'{"a":1}') == b'data: {"a":1}\n\n'


def test_done_and_keepalive_are_fixed_bytes() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert KEEPALIVE == b": ping\n\n"


def test_resume_blocks_carry_an_id_line() -> None:
    assert sse_event_with_id(7, b"{}") == b"id: 7\ndata: {}\n\n"
