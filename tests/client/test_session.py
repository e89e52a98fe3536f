"""A Session on its own: events read once, in seq order, whatever the socket delivers."""

from __future__ import annotations

from typing import Any

from tokenmux import Client, ContentChunk, Session, StreamEnd


def event(type_: str, seq: int, **data: Any) -> dict[str, Any]:
    return {"type": type_, "session": "s1", "seq": seq, "timestamp": 1, "data": data}


START = event("stream_start", 0, session_id="s1", provider="p", model="m", resume_token="t")


def chunk(seq: int, text: str, total: str) -> dict[str, Any]:
    return event("content_chunk", seq, content=text, index=seq - 1, accumulated_length=len(total))


async def test_replayed_events_are_dropped_by_seq() -> None:
    session = Session(Client(), "s1")
    for envelope in (START, chunk(1, "a", "a"), chunk(2, "b", "ab"), START, chunk(2, "b", "ab")):
        session._receive(envelope)
    session._receive(chunk(3, "c", "abc"))
    session._receive(event("stream_end", 4, reason="cancelled", chunks=3))
    session._receive(chunk(5, "late", "abclate"))  # nothing follows stream_end
    seen = [e async for e in session]
    assert [e.seq for e in seen] == [0, 1, 2, 3, 4]
    assert session.content == "abc" and isinstance(seen[-1], StreamEnd)


async def test_a_recovery_notice_restores_the_text_before_the_replay() -> None:
    session = Session(Client(), "s1")
    session._receive(START)
    session._receive(chunk(1, "a", "a"))
    session._receive(event("metadata", 6, recovered=False, content_so_far="abcdef"))
    session._receive(chunk(7, "g", "abcdefg"))
    assert session.content == "abcdefg" and session.last_seq == 7
    assert [type(e) for e in list(session._events)][-1] is ContentChunk
