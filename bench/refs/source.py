"""The token source every reference server uses: the simulator's own text and pacing.

Same tokens as tokenmux's simulator (so the same bytes go on the wire), paced the same
way: ``tokens_per_second`` > 0 sleeps per token; 0 yields to the loop once per ``burst``
tokens. Envelopes have tokenmux's shape (type, session, seq, timestamp, data) so every
stack moves the same payloads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from server.protocol.envelope import Message
from server.providers.base import ProviderRequest
from server.providers.sim import DEFAULT_BURST, sim_tokens

__all__ = ["cancelled_end", "envelopes", "sync_envelopes"]


async def envelopes(
    session: str, prompt: str, params: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """stream_start, one content_chunk per token, content_complete, stream_end."""
    request = ProviderRequest(messages=(Message("user", prompt),), model="sim-1")
    tokens = sim_tokens(request, int(params.get("max_tokens", 64)))
    rate = float(params.get("tokens_per_second", 0))
    burst = max(int(params.get("burst", DEFAULT_BURST)), 1)
    event = _numbered(session)
    yield event("stream_start", _start_data(session))
    began = time.monotonic()
    text = ""
    for i, token in enumerate(tokens):
        text += token
        yield event(
            "content_chunk", {"content": token, "index": i, "accumulated_length": len(text)}
        )
        if rate:
            await asyncio.sleep(max(began + (i + 1) / rate - time.monotonic(), 0.0))
        elif i % burst == burst - 1 or i == 0:
            await asyncio.sleep(0)
    for ending in _ending(event, text, len(tokens), began):
        yield ending


def sync_envelopes(session: str, prompt: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The same events from a plain iterator: tokens that never yield to the loop (the naive
    reference; ``tokens_per_second`` and ``burst`` are ignored)."""
    request = ProviderRequest(messages=(Message("user", prompt),), model="sim-1")
    tokens = sim_tokens(request, int(params.get("max_tokens", 64)))
    began = time.monotonic()
    event = _numbered(session)
    yield event("stream_start", _start_data(session))
    text = ""
    for i, token in enumerate(tokens):
        text += token
        yield event(
            "content_chunk", {"content": token, "index": i, "accumulated_length": len(text)}
        )
    yield from _ending(event, text, len(tokens), began)


Event = Callable[[str, dict[str, Any]], dict[str, Any]]


def _numbered(session: str) -> Event:
    """A maker of the session's envelopes, numbering them from 0."""
    seq = -1

    def event(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        timestamp = int(time.time() * 1000)
        return {"type": type_, "session": session, "seq": seq, "timestamp": timestamp, "data": data}

    return event


def _start_data(session: str) -> dict[str, Any]:
    return {"session_id": session, "provider": "sim", "model": "sim-1", "resume_token": None}


def _ending(event: Event, text: str, chunks: int, began: float) -> Iterator[dict[str, Any]]:
    yield event("content_complete", {"total_content": text, "total_length": len(text)})
    duration_ms = round((time.monotonic() - began) * 1000)
    usage = {"input_tokens": 1, "output_tokens": chunks, "estimated": False}
    yield event(
        "stream_end",
        {"reason": "complete", "chunks": chunks, "duration_ms": duration_ms, "usage": usage},
    )


def cancelled_end(session: str, seq: int) -> dict[str, Any]:
    return {
        "type": "stream_end",
        "session": session,
        "seq": seq,
        "timestamp": int(time.time() * 1000),
        "data": {"reason": "cancelled", "chunks": 0, "duration_ms": 0, "usage": {}},
    }
