"""SSE helpers for the tests: parse bodies on raw bytes, open a resumable SSE session."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

__all__ = ["open_detached_sse", "parse_eventsource", "parse_sse"]


def parse_sse(raw: bytes) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Split an SSE body into its data events, checking the framing rules of PROTOCOL §4/§8."""
    assert b"\r" not in raw
    assert raw.endswith(b"data: [DONE]\n\n"), raw[-80:]
    blocks = raw[:-2].split(b"\n\n")
    events, comments = [], []
    for block in blocks[:-1]:
        if block.startswith(b":"):
            comments.append(block)
            continue
        assert block.startswith(b"data: ") and b"\n" not in block, block
        events.append(json.loads(block[6:]))
    assert blocks[-1] == b"data: [DONE]"
    return events, comments


def parse_eventsource(raw: bytes) -> list[dict[str, Any]]:
    """The events of a resume stream: each block an ``id: <seq>`` line then ``data:``."""
    blocks = raw.split(b"\n\n")
    assert blocks[-2:] == [b"data: [DONE]", b""]
    events = []
    for block in blocks[:-2]:
        if block.startswith(b":"):
            continue
        id_line, data_line = block.split(b"\n")
        event = json.loads(data_line[6:])
        assert id_line == b"id: %d" % event["seq"]
        events.append(event)
    return events


async def open_detached_sse(
    http: aiohttp.ClientSession, base_url: str, session_id: str, *, seen: int = 4
) -> tuple[list[dict[str, Any]], str]:
    """POST a detachable SSE session, read its first ``seen`` events, drop the connection;
    return those events and the resume token."""
    body = {
        "prompt": "x",
        "session_id": session_id,
        "on_disconnect": "detach",
        "llm_params": {"max_tokens": 30, "tokens_per_second": 200},
    }
    response = await http.post(base_url + "/api/stream", json=body)
    head = b"".join([await response.content.readuntil(b"\n\n") for _ in range(seen)])
    response.close()
    first, _ = parse_sse(head + b"data: [DONE]\n\n")
    return first, first[0]["data"]["resume_token"]
