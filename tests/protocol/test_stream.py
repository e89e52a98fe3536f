"""SessionStream: the per-session state machine, by example and by property."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.protocol.envelope import Envelope
from server.protocol.stream import SessionStream, StreamStateError
from tests._client import check_session


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def new_stream(prompt_chars: int = 8) -> SessionStream:
    return SessionStream("s1", prompt_chars=prompt_chars, clock=FakeClock())


def test_a_complete_life_has_contiguous_seq_and_consistent_lengths() -> None:
    """start, two chunks, metadata, complete: seq 0..5 and lengths in code points."""
    stream = new_stream()
    events = [stream.start(provider="sim", model="m", resume_token=None)]
    events.append(stream.chunk("Hé"))
    events.append(stream.chunk(" 👋"))
    events.append(stream.metadata({"finish_reason": "stop"}))
    events.extend(stream.complete())
    assert [e["type"] for e in events] == [
        "stream_start",
        "content_chunk",
        "content_chunk",
        "metadata",
        "content_complete",
        "stream_end",
    ]
    assert events[2]["data"] == {"content": " 👋", "index": 1, "accumulated_length": 4}
    assert events[4]["data"] == {"total_content": "Hé 👋", "total_length": 4}
    assert events[5]["data"]["usage"] == {"input_tokens": 2, "output_tokens": 1, "estimated": True}
    assert events[0]["timestamp"] == 1_700_000_000_001
    check_session(events)


def test_provider_usage_replaces_the_estimate() -> None:
    stream = new_stream()
    stream.start(provider="sim", model="m", resume_token=None)
    stream.record_usage(10, 20)
    end = stream.complete()[-1]
    assert end["data"]["usage"] == {"input_tokens": 10, "output_tokens": 20, "estimated": False}


def test_merging_into_the_newest_chunk_spends_no_seq() -> None:
    """A merged chunk keeps its seq and index; its accumulated_length grows."""
    stream = new_stream()
    stream.start(provider="sim", model="m", resume_token=None)
    chunk = stream.chunk("ab")
    merged = stream.merge_chunk(chunk, "cd")
    assert merged["data"] == {"content": "abcd", "index": 0, "accumulated_length": 4}
    assert merged["seq"] == chunk["seq"] == 1
    assert chunk["data"] == {"content": "ab", "index": 0, "accumulated_length": 2}  # untouched
    assert stream.metadata({})["seq"] == 2
    assert stream.chunks == 1 and stream.text() == "abcd"


def test_only_the_newest_chunk_can_be_merged_into() -> None:
    stream = new_stream()
    stream.start(provider="sim", model="m", resume_token=None)
    first = stream.chunk("a")
    stream.chunk("b")
    with pytest.raises(StreamStateError):
        stream.merge_chunk(first, "c")
    newest = stream.chunk("c")
    stream.metadata({})
    with pytest.raises(StreamStateError):
        stream.merge_chunk(newest, "d")  # an event came after it


@pytest.mark.parametrize("reason", ["complete", "error"])
def test_settling_reasons_need_their_settling_event(reason: Any) -> None:
    stream = new_stream()
    stream.start(provider="sim", model="m", resume_token=None)
    with pytest.raises(StreamStateError):
        stream.end(reason)


def test_nothing_follows_stream_end() -> None:
    stream = new_stream()
    stream.start(provider="sim", model="m", resume_token=None)
    stream.end("cancelled")
    for action in (lambda: stream.chunk("x"), lambda: stream.metadata({}), stream.complete):
        with pytest.raises(StreamStateError):
            action()
    with pytest.raises(StreamStateError):
        stream.end("cancelled")


def test_a_stream_must_start_first() -> None:
    with pytest.raises(StreamStateError):
        new_stream().chunk("x")


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("delta"), st.text(min_size=1, max_size=4)),
        st.tuples(st.just("merge"), st.text(min_size=1, max_size=4)),
        st.tuples(st.just("usage"), st.integers(0, 10_000)),
        st.tuples(st.sampled_from(["metadata", "complete", "fail"]), st.none()),
        st.tuples(st.just("end"), st.sampled_from(["cancelled", "timeout", "shutdown"])),
    ),
    max_size=40,
)


def apply(stream: SessionStream, events: list[Envelope], op: str, arg: Any) -> None:
    match op:
        case "delta":
            events.append(stream.chunk(arg))
        case "merge":
            # The outbox merges only into the session's newest queued event, when a chunk.
            if events[-1]["type"] == "content_chunk":
                events[-1] = stream.merge_chunk(events[-1], arg)
            else:
                events.append(stream.chunk(arg))
        case "usage":
            stream.record_usage(arg, arg)
        case "metadata":
            events.append(stream.metadata({"n": len(events)}))
        case "complete":
            events.extend(stream.complete())
        case "fail":
            events.extend(
                stream.fail({"code": "provider_error", "message": "x", "retryable": True})
            )
        case "end":
            events.append(stream.end(arg))


@given(OPERATIONS)
def test_any_interleaving_yields_a_valid_life(operations: list[tuple[str, Any]]) -> None:
    """Whatever the provider and the client do, the events obey the protocol's shape."""
    stream = new_stream()
    events = [stream.start(provider="sim", model="m", resume_token="t")]
    for op, arg in operations:
        if stream.ended:
            if op != "usage":
                with pytest.raises(StreamStateError):
                    apply(stream, events, op, arg)
            continue
        apply(stream, events, op, arg)
    if not stream.ended:
        events.append(stream.end("cancelled"))
    end = check_session(events)
    assert end["text"] == stream.text()
    assert stream.length == len(stream.text())


def test_reasoning_tool_calls_and_sources_form_a_section_9_life() -> None:
    """Reasoning counts apart from content; content_complete carries it and the calls."""
    stream = new_stream()
    events = [stream.start(provider="sim", model="m", resume_token=None)]
    events.append(stream.reasoning("Think "))
    events.append(stream.chunk("Hi"))
    events.append(stream.reasoning("more."))
    stream.sign_reasoning("sig")
    events.append(stream.tool_call_start("c1", "f", 0))
    events.append(stream.tool_call_delta("c1", '{"a":'))
    events.append(stream.tool_call_delta("c1", " 1}"))
    events.append(stream.tool_call_end("c1", "f", {"a": 1}, '{"a": 1}', signature="ts"))
    events.append(stream.tool_call_start("c2", "g", 1))
    events.append(stream.tool_call_delta("c2", "{oops"))
    events.append(stream.tool_call_end("c2", "g", None, "{oops"))
    events.append(stream.source({"url": "https://example.com", "title": "Ex"}))
    stream.record_usage(5, 9, cached_input_tokens=2, reasoning_tokens=4)
    events.extend(stream.complete())
    assert events[3]["data"] == {"content": "more.", "index": 1, "accumulated_length": 11}
    assert events[2]["data"] == {"content": "Hi", "index": 0, "accumulated_length": 2}
    assert events[10]["data"] == {
        "id": "c2",
        "name": "g",
        "arguments": None,
        "arguments_text": "{oops",
        "error": "invalid_json",
    }
    done = events[-2]["data"]
    assert done["reasoning"] == {"text": "Think more.", "signature": "sig"}
    assert done["tool_calls"] == [
        {"id": "c1", "name": "f", "arguments": {"a": 1}, "signature": "ts"},
        {
            "id": "c2",
            "name": "g",
            "arguments": None,
            "arguments_text": "{oops",
            "error": "invalid_json",
        },
    ]
    usage = events[-1]["data"]["usage"]
    assert usage == {
        "input_tokens": 5,
        "output_tokens": 9,
        "cached_input_tokens": 2,
        "reasoning_tokens": 4,
        "estimated": False,
    }
    assert events[-1]["data"]["chunks"] == 1  # content chunks only
    end = check_session(events)
    assert end["reasoning"] == "Think more." and stream.reasoning_text() == "Think more."


def test_a_reasoning_chunk_merges_like_a_content_chunk() -> None:
    stream = new_stream()
    stream.start(provider="sim", model="m", resume_token=None)
    chunk = stream.reasoning("ab")
    merged = stream.merge_chunk(chunk, "cd")
    assert merged["type"] == "reasoning_chunk" and merged["seq"] == chunk["seq"]
    assert merged["data"] == {"content": "abcd", "index": 0, "accumulated_length": 4}
    assert stream.reasoning_text() == "abcd" and stream.text() == ""
    assert stream.complete()[0]["data"]["reasoning"] == {"text": "abcd"}
