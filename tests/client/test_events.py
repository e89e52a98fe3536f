"""Typed events from envelopes built per PROTOCOL.md sections 2 and 9, and typed errors.

The server does not send reasoning, tool-call or source events yet; these envelopes follow
the protocol's text field by field.
"""

from __future__ import annotations

from typing import Any

import pytest

from tokenmux import (
    AuthError,
    BadResponse,
    ConnectionLost,
    ContentChunk,
    ContentComplete,
    ErrorEvent,
    Metadata,
    ProviderAuth,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    RateLimited,
    Reasoning,
    ReasoningChunk,
    RequestError,
    ServerError,
    SessionNotFound,
    Source,
    StreamEnd,
    StreamStart,
    TokenmuxError,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UnknownEvent,
    Usage,
)
from tokenmux.errors import error_from_payload
from tokenmux.events import parse_event, parse_ready


def envelope(type_: str, data: dict[str, Any], seq: int = 1) -> dict[str, Any]:
    return {
        "type": type_,
        "session": "s1",
        "seq": seq,
        "timestamp": 1_700_000_000_000,
        "data": data,
    }


def test_section_2_events() -> None:
    start = parse_event(
        envelope(
            "stream_start",
            {"session_id": "s1", "provider": "sim", "model": "m", "resume_token": None},
            seq=0,
        )
    )
    assert start == StreamStart(
        session="s1", seq=0, timestamp=1_700_000_000_000,
        session_id="s1", provider="sim", model="m", resume_token=None,
    )  # fmt: skip
    assert start.type == "stream_start"
    chunk = parse_event(
        envelope("content_chunk", {"content": "Hé", "index": 0, "accumulated_length": 2})
    )
    assert isinstance(chunk, ContentChunk) and chunk.content == "Hé"
    end = parse_event(
        envelope(
            "stream_end",
            {
                "reason": "cancelled",
                "duration_ms": 12,
                "chunks": 1,
                "usage": {"input_tokens": 3, "output_tokens": 1, "estimated": True},
            },
        )
    )
    assert isinstance(end, StreamEnd) and end.reason == "cancelled"
    assert end.usage == Usage(input_tokens=3, output_tokens=1, estimated=True)
    error = parse_event(
        envelope("error", {"code": "provider_rate_limited", "message": "slow down"})
    )
    assert isinstance(error, ErrorEvent) and error.retryable  # from the code when omitted
    exception = error.exception()
    assert isinstance(exception, ProviderRateLimited) and exception.session == "s1"


def test_section_9_reasoning_and_tool_calls() -> None:
    reasoning = parse_event(
        envelope("reasoning_chunk", {"content": "think", "index": 0, "accumulated_length": 5})
    )
    assert isinstance(reasoning, ReasoningChunk) and reasoning.accumulated_length == 5
    started = parse_event(envelope("tool_call_start", {"id": "c1", "name": "f", "index": 0}))
    assert started == ToolCallStart(session="s1", seq=1, timestamp=1_700_000_000_000,
                                    id="c1", name="f", index=0)  # fmt: skip
    delta = parse_event(envelope("tool_call_delta", {"id": "c1", "arguments_delta": '{"a"'}))
    assert isinstance(delta, ToolCallDelta) and delta.arguments_delta == '{"a"'
    ended = parse_event(
        envelope(
            "tool_call_end", {"id": "c1", "name": "f", "arguments": {"a": 1}, "signature": "sig"}
        )
    )
    assert isinstance(ended, ToolCallEnd) and ended.arguments == {"a": 1}
    assert ended.signature == "sig" and ended.error is None
    broken = parse_event(
        envelope(
            "tool_call_end",
            {
                "id": "c2",
                "name": "f",
                "arguments": None,
                "arguments_text": '{"a":',
                "error": "invalid_json",
            },
        )
    )
    assert isinstance(broken, ToolCallEnd) and broken.arguments is None
    assert (broken.arguments_text, broken.error) == ('{"a":', "invalid_json")


def test_section_9_sources_metadata_and_complete() -> None:
    source = parse_event(envelope("source", {"url": "https://example.org", "title": "T"}))
    assert isinstance(source, Source) and source.cited_text is None
    metadata = parse_event(
        envelope(
            "metadata",
            {
                "finish_reason": "tool_calls",
                "raw_finish_reason": "tool_use",
                "refusal": None,
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 9,
                    "cached_input_tokens": 2,
                    "reasoning_tokens": 4,
                },
                "fallback_from": "openai",
            },
        )
    )
    assert isinstance(metadata, Metadata) and metadata.finish_reason == "tool_calls"
    assert metadata.raw_finish_reason == "tool_use" and metadata.recovered
    assert metadata.usage == Usage(
        input_tokens=5, output_tokens=9, cached_input_tokens=2, reasoning_tokens=4
    )
    assert metadata.extra == {"fallback_from": "openai"}
    refused = parse_event(envelope("metadata", {"refusal": "I can't help with that."}))
    assert isinstance(refused, Metadata) and refused.refusal == "I can't help with that."
    recovery = parse_event(envelope("metadata", {"recovered": False, "content_so_far": "ab"}))
    assert isinstance(recovery, Metadata) and not recovery.recovered
    complete = parse_event(
        envelope(
            "content_complete",
            {
                "total_content": "",
                "total_length": 0,
                "reasoning": {"text": "think", "signature": "s"},
                "tool_calls": [{"id": "c1", "name": "f", "arguments": {"a": 1}}],
            },
        )
    )
    assert isinstance(complete, ContentComplete)
    assert complete.reasoning == Reasoning(text="think", signature="s")
    assert complete.tool_calls == (ToolCall(id="c1", name="f", arguments={"a": 1}),)


def test_unknown_types_pass_through() -> None:
    event = parse_event(envelope("image", {"url": "data:image/png;base64,AA"}))
    assert isinstance(event, UnknownEvent)
    assert (event.type, event.seq, event.data) == ("image", 1, {"url": "data:image/png;base64,AA"})


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("content_chunk", {"content": "x", "index": 0}),  # accumulated_length missing
        ("content_chunk", {"content": 1, "index": 0, "accumulated_length": 1}),
        ("content_chunk", {"content": "x", "index": True, "accumulated_length": 1}),
        ("stream_end", {"reason": "finished"}),
        ("tool_call_end", {"id": "c", "name": "f", "arguments": [1]}),
        ("metadata", {"usage": "lots"}),
    ],
)
def test_a_malformed_known_event_is_bad_response(type_: str, data: dict[str, Any]) -> None:
    with pytest.raises(BadResponse) as bad:
        parse_event(envelope(type_, data))
    assert bad.value.code == "bad_response" and bad.value.session == "s1"


def test_an_envelope_without_seq_is_bad_response() -> None:
    with pytest.raises(BadResponse):
        parse_event({"type": "content_chunk", "session": "s1", "data": {}})


def test_ready() -> None:
    ready = parse_ready(
        {
            "protocol": 1,
            "server": "tokenmux/0.1.0",
            "encoding": "json",
            "providers": ["sim"],
            "default_provider": "sim",
            "limits": {"max_sessions": 100},
            "resume": {"enabled": True, "grace_s": 30},
        }
    )
    assert ready.providers == ("sim",) and ready.resume["grace_s"] == 30


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        ("bad_request", RequestError, False),
        ("invalid_field", RequestError, False),
        ("unknown_provider", RequestError, False),
        ("duplicate_session", RequestError, False),
        ("unauthorized", AuthError, False),
        ("forbidden_origin", AuthError, False),
        ("session_not_found", SessionNotFound, False),
        ("rate_limited", RateLimited, True),
        ("too_many_sessions", RateLimited, True),
        ("provider_error", ProviderError, True),
        ("provider_timeout", ProviderTimeout, True),
        ("provider_rate_limited", ProviderRateLimited, True),
        ("provider_auth", ProviderAuth, False),
        ("internal", ServerError, True),
        ("shutting_down", ServerError, True),
        ("node_lost", ServerError, True),
        ("connection_lost", ConnectionLost, True),
        ("a_future_code", TokenmuxError, False),
    ],
)
def test_error_codes_map_to_exception_classes(
    code: str, cls: type[TokenmuxError], retryable: bool
) -> None:
    error = error_from_payload({"code": code, "message": "m"})
    assert type(error) is cls and error.code == code and error.retryable is retryable
    assert isinstance(error, TokenmuxError) and str(error) == f"{code}: m"


def test_the_payload_says_retryable_and_when() -> None:
    error = error_from_payload(
        {
            "code": "rate_limited",
            "message": "m",
            "retryable": False,
            "retry_after_ms": 1500,
            "ref": {"type": "start", "session": "s"},
        }
    )
    assert not error.retryable and error.retry_after_s == 1.5
    assert error.ref == {"type": "start", "session": "s"}
