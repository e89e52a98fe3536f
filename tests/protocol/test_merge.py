"""protocol/merge.py: one envelope for a run of streamed events, on its own."""

from __future__ import annotations

from typing import Any

import pytest

from server.protocol.envelope import Envelope
from server.protocol.merge import can_merge, merge
from server.protocol.stream import SessionStream
from tests._client import check_session


def event(type_: str, seq: int, session: str = "s", **data: Any) -> Envelope:
    return {"type": type_, "session": session, "seq": seq, "timestamp": seq, "data": data}


def test_a_merged_run_is_its_newest_event_with_all_the_text() -> None:
    run = [
        event("content_chunk", 3, content="He", index=1, accumulated_length=4),
        event("content_chunk", 4, content="llo", index=2, accumulated_length=7),
        event("content_chunk", 5, content="!", index=3, accumulated_length=8),
    ]
    before = [dict(e, data=dict(e["data"])) for e in run]
    merged = merge(run)
    assert merged == event("content_chunk", 5, content="Hello!", index=3, accumulated_length=8)
    assert run == before  # pure: nothing it was given changed


def test_a_run_of_one_is_returned_as_it_is() -> None:
    only = event("content_chunk", 1, content="a", index=0, accumulated_length=1)
    assert merge([only]) is only


def test_reasoning_merges_like_content_but_never_with_it() -> None:
    """reasoning_chunk counts index and accumulated_length apart from content (§9)."""
    thought = [
        event("reasoning_chunk", 1, content="let me ", index=0, accumulated_length=7),
        event("reasoning_chunk", 2, content="think", index=1, accumulated_length=12),
    ]
    assert merge(thought)["data"] == {
        "content": "let me think",
        "index": 1,
        "accumulated_length": 12,
    }
    text = event("content_chunk", 3, content="Hi", index=0, accumulated_length=2)
    assert not can_merge(thought[-1], text)
    with pytest.raises(ValueError):
        merge([*thought, text])


def test_tool_call_deltas_merge_within_one_call_only() -> None:
    a1 = event("tool_call_delta", 4, id="a", arguments_delta='{"ci')
    a2 = event("tool_call_delta", 5, id="a", arguments_delta='ty": "Oslo"}')
    b1 = event("tool_call_delta", 6, id="b", arguments_delta="{")
    assert merge([a1, a2]) == event(
        "tool_call_delta", 5, id="a", arguments_delta='{"city": "Oslo"}'
    )
    assert not can_merge(a2, b1)
    with pytest.raises(ValueError):
        merge([a1, a2, b1])


def test_events_that_do_not_stream_text_or_belong_elsewhere_never_merge() -> None:
    chunk = event("content_chunk", 1, content="a", index=0, accumulated_length=1)
    other = event("content_chunk", 1, session="t", content="b", index=0, accumulated_length=1)
    metadata = event("metadata", 2, k=1)
    assert not can_merge(chunk, other)
    assert not can_merge(metadata, metadata)
    assert not can_merge(chunk, metadata)


def test_merging_the_session_way_keeps_a_valid_life() -> None:
    """The session merges before any reader took its newest chunk: no seq is spent, so
    the merged life still has gap-free seq and index (what check_session holds)."""
    stream = SessionStream("s")
    events = [stream.start(provider="sim", model="m", resume_token=None)]
    for i in range(10):
        if i % 3 and events[-1]["type"] == "content_chunk":
            events[-1] = stream.merge_chunk(events[-1], f"w{i} ")
        else:
            events.append(stream.chunk(f"w{i} "))
    events += stream.complete()
    assert check_session(events)["text"] == "".join(f"w{i} " for i in range(10))
    assert [e["data"]["content"] for e in events if e["type"] == "content_chunk"] == [
        "w0 w1 w2 ",
        "w3 w4 w5 ",
        "w6 w7 w8 ",
        "w9 ",
    ]
