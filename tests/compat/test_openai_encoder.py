"""The chat.completion.chunk encoder and the non-streaming answer, checked with the
openai SDK's own models and its own chunk accumulator."""

from __future__ import annotations

import json
from typing import Any

from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from server.metrics import TransportTally
from server.protocol.envelope import Envelope
from server.protocol.openai_encoder import ChatCompletionChunks, chat_completion
from tests.compat.events import Events


def encode(events: list[Envelope], *, include_usage: bool = False, batch: int = 1) -> bytes:
    encoder = ChatCompletionChunks("chatcmpl-1", created=1700000000, include_usage=include_usage)
    parts = [encoder.encode(events[i : i + batch]) for i in range(0, len(events), batch)]
    return b"".join(parts) + encoder.finish()


def blocks(raw: bytes) -> list[Any]:
    assert raw.endswith(b"data: [DONE]\n\n") and b"\r" not in raw
    out = []
    for block in raw[:-2].split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ") and b"\n" not in block
        out.append(json.loads(block[6:]))
    return out


def accumulate(chunks: list[Any]) -> Any:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.get_final_completion()


def test_text_stream_is_what_openai_sends() -> None:
    events = Events().start().text("Hel", 'lo "wörld"\n').complete().events
    chunks = blocks(encode(events, include_usage=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["id"] for c in chunks} == {"chatcmpl-1"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["model"] == "sim/sim-1"
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["Hel", 'lo "wörld"\n']
    assert chunks[3]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    final = accumulate(chunks)
    assert final.choices[0].message.content == "Hel" + 'lo "wörld"\n'
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.total_tokens == 8


def test_batches_encode_to_the_same_bytes() -> None:
    events = Events().start().text("a", "b", "c").complete().events
    assert encode(events, batch=1) == encode(events, batch=4)


def test_no_usage_chunk_unless_asked() -> None:
    chunks = blocks(encode(Events().start().text("x").complete().events))
    assert all(chunk["choices"] for chunk in chunks)


def test_reasoning_tool_calls_and_finish_reason() -> None:
    events = (
        Events()
        .start()
        .reasoning("think", "ing")
        .tool_call("call_1", "get_weather", 0, '{"city":', '"Oslo"}', arguments={"city": "Oslo"})
        .tool_call("call_2", "get_time", 1, arguments={"tz": "UTC"})  # arguments given whole
        .add("metadata", finish_reason="tool_calls", raw_finish_reason="tool_use")
        .complete()
        .events
    )
    chunks = blocks(encode(events))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[1] == {"reasoning_content": "think"}
    assert deltas[3]["tool_calls"][0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert deltas[4]["tool_calls"][0] == {"index": 0, "function": {"arguments": '{"city":'}}
    final = accumulate(chunks)
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("call_1", "get_weather", '{"city":"Oslo"}'),
        ("call_2", "get_time", '{"tz":"UTC"}'),
    ]
    assert chunks[1]["choices"][0]["delta"]["reasoning_content"] == "think"


def test_refusal_and_url_sources() -> None:
    events = (
        Events()
        .start()
        .add("source", url="https://example.org/a", title="A")
        .add("source", title="no url", document_index=0)
        .add("metadata", refusal="I can't help with that.", finish_reason="content_filter")
        .complete()
        .events
    )
    chunks = blocks(encode(events))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[1] == {
        "annotations": [
            {"type": "url_citation", "url_citation": {"url": "https://example.org/a", "title": "A"}}
        ]
    }
    assert deltas[2] == {"refusal": "I can't help with that."}
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_an_error_mid_stream_is_in_band() -> None:
    events = Events().start().text("par").fail("provider_error", "upstream failed").events
    chunks = blocks(encode(events, include_usage=True))
    assert chunks[-1] == {
        "error": {
            "message": "upstream failed",
            "type": "server_error",
            "param": None,
            "code": "provider_error",
        }
    }


def test_an_unsettled_end_is_an_error_too() -> None:
    for reason, code in (
        ("cancelled", "cancelled"),
        ("timeout", "timeout"),
        ("shutdown", "shutting_down"),
    ):
        chunks = blocks(encode(Events().start().text("a").end(reason).events))
        assert chunks[-1]["error"]["code"] == code


def test_non_streaming_answer() -> None:
    events = (
        Events()
        .start("sim", "sim-2")
        .reasoning("hmm")
        .text("Hi", "!")
        .add("metadata", usage={"input_tokens": 4, "output_tokens": 2, "reasoning_tokens": 1})
        .complete({"input_tokens": 4, "output_tokens": 2, "estimated": False})
        .events
    )
    status, body = chat_completion(events, "chatcmpl-9", created=1)
    assert status == 200
    completion = ChatCompletion.model_validate(body)
    assert completion.model == "sim/sim-2"
    assert completion.choices[0].message.content == "Hi!"
    assert body["choices"][0]["message"]["reasoning_content"] == "hmm"
    assert completion.usage is not None
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 1


def test_non_streaming_failure_is_an_openai_error() -> None:
    status, body = chat_completion(
        Events().start().fail("provider_timeout", "slow").events, "c", created=1
    )
    assert status == 504
    assert body["error"]["code"] == "provider_timeout"
    assert body["error"]["type"] == "server_error"


def test_with_a_tally_the_same_bytes_and_every_event_counted() -> None:
    events = Events().start().reasoning("r").text("a", "b").complete().events
    tally = TransportTally()
    counted = ChatCompletionChunks(
        "chatcmpl-1", created=1700000000, include_usage=True, tally=tally
    )
    raw = b"".join(counted.encode([e]) for e in events) + counted.finish()
    assert raw == encode(events, include_usage=True)
    assert dict(tally.events) == {
        "stream_start": 1,
        "reasoning_chunk": 1,
        "content_chunk": 2,
        "content_complete": 1,
        "stream_end": 1,
    }
    assert sum(tally.bytes.values()) == len(raw) - len(counted.finish())
