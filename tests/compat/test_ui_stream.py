"""The UI message stream encoder and the UIMessage → messages translation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.errors import ProtocolError
from server.metrics import TransportTally
from server.protocol.envelope import Envelope
from server.protocol.ui_encoder import UiMessageStream
from server.protocol.ui_request import ui_chat_body, ui_messages
from tests.compat.events import Events


def parts(events: list[Envelope]) -> list[dict[str, Any]]:
    encoder = UiMessageStream("msg-1")
    raw = b"".join(encoder.encode([event]) for event in events) + encoder.finish()
    assert raw.endswith(b"data: [DONE]\n\n")
    return [json.loads(block[6:]) for block in raw[:-2].split(b"\n\n")[:-1]]


def kinds(events: list[Envelope]) -> list[str]:
    return [part["type"] for part in parts(events)]


def test_text_answer() -> None:
    events = (
        Events()
        .start()
        .text("Hel", "lo")
        .add("metadata", ttft_ms=7, finish_reason="stop")
        .complete()
        .events
    )
    out = parts(events)
    assert [p["type"] for p in out] == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
    ]
    assert out[0] == {
        "type": "start",
        "messageId": "msg-1",
        "messageMetadata": {"provider": "sim", "model": "sim-1", "sessionId": "s1"},
    }
    assert {out[2]["id"], out[3]["id"], out[5]["id"]} == {"text-1"}
    assert out[3]["delta"] + out[4]["delta"] == "Hello"
    assert out[-1] == {
        "type": "finish",
        "finishReason": "stop",
        "messageMetadata": {
            "usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8, "estimated": False},
            "finishReason": "stop",
            "durationMs": 12,
            "ttftMs": 7,
        },
    }


def test_reasoning_tools_and_sources_become_their_parts() -> None:
    events = (
        Events()
        .start()
        .reasoning("a", "b")
        .text("c")
        .tool_call("call_1", "weather", 0, '{"city":"Oslo"}', arguments={"city": "Oslo"})
        .add("tool_call_start", id="call_2", name="bad", index=1)
        .add(
            "tool_call_end",
            id="call_2",
            name="bad",
            arguments=None,
            arguments_text="{",
            error="invalid_json",
        )
        .add("source", url="https://example.org", title="Ex")
        .add("source", cited_text="quoted")
        .add("metadata", finish_reason="tool_calls")
        .complete()
        .events
    )
    out = parts(events)
    assert [p["type"] for p in out] == [
        "start",
        "start-step",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-input-start",
        "tool-input-error",
        "source-url",
        "source-document",
        "finish-step",
        "finish",
    ]
    assert out[2]["id"] == "reasoning-1" and out[6]["id"] == "text-2"
    assert out[11] == {
        "type": "tool-input-available",
        "toolCallId": "call_1",
        "toolName": "weather",
        "input": {"city": "Oslo"},
    }
    assert out[13]["input"] == "{"
    assert out[14] == {
        "type": "source-url",
        "sourceId": "source-1",
        "url": "https://example.org",
        "title": "Ex",
    }
    assert out[15]["title"] == "quoted"
    assert out[-1]["finishReason"] == "tool-calls"


def test_error_cancel_and_timeout_endings() -> None:
    assert kinds(Events().start().text("x").fail().events)[-2:] == ["text-end", "error"]
    assert kinds(Events().start().text("x").end("cancelled").events)[-2:] == ["text-end", "abort"]
    assert parts(Events().start().end("timeout").events)[-1] == {
        "type": "error",
        "errorText": "the generation ran out of time",
    }


def test_a_replay_that_lost_its_start_still_opens_the_message() -> None:
    events = Events().start().text("abc", "d").events[2:]
    events.insert(
        0,
        {
            "type": "metadata",
            "session": "s1",
            "seq": 1,
            "timestamp": 0,
            "data": {"recovered": False, "content_so_far": "abc"},
        },
    )
    out = parts(events)
    assert [p["type"] for p in out] == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
    ]
    assert out[3]["delta"] + out[4]["delta"] == "abcd"


def test_ui_messages_map_onto_tokenmux_messages() -> None:
    messages = [
        {"id": "s", "role": "system", "parts": [{"type": "text", "text": "Be brief."}]},
        {
            "id": "u1",
            "role": "user",
            "parts": [
                {"type": "text", "text": "What is "},
                {"type": "text", "text": "this?"},
                {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AAAA"},
            ],
        },
        {
            "id": "a1",
            "role": "assistant",
            "parts": [
                {"type": "step-start"},
                {"type": "reasoning", "text": "look"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool-weather",
                    "toolCallId": "c1",
                    "state": "output-available",
                    "input": {"city": "Oslo"},
                    "output": {"temp": 3},
                },
                {
                    "type": "dynamic-tool",
                    "toolName": "clock",
                    "toolCallId": "c2",
                    "state": "output-error",
                    "input": {},
                    "errorText": "no clock",
                },
                {
                    "type": "tool-pending",
                    "toolCallId": "c3",
                    "state": "input-available",
                    "input": {},
                },
                {"type": "step-start"},
                {"type": "text", "text": "It is 3 degrees."},
                {"type": "source-url", "sourceId": "x", "url": "https://example.org"},
            ],
        },
        {
            "id": "u2",
            "role": "user",
            "parts": [{"type": "text", "text": "Thanks"}, {"type": "data-note", "data": 1}],
        },
    ]
    assert ui_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is "},
                {"type": "text", "text": "this?"},
                {"type": "image", "url": "data:image/png;base64,AAAA"},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning": {"text": "look"},
            "tool_calls": [
                {"id": "c1", "name": "weather", "arguments": {"city": "Oslo"}},
                {"id": "c2", "name": "clock", "arguments": {}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp":3}'},
        {"role": "tool", "tool_call_id": "c2", "content": "no clock"},
        {"role": "assistant", "content": "It is 3 degrees."},
        {"role": "user", "content": "Thanks"},
    ]


def test_chat_body() -> None:
    request = ui_chat_body(
        {
            "id": "chat-1",
            "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
            "trigger": "submit-message",
            "provider": "sim",
            "model": "sim-2",
            "params": {"max_tokens": 3},
            "on_disconnect": "detach",
        }
    )
    assert request.chat_id == "chat-1" and request.message_id is None
    assert request.body == {
        "session_id": "chat-1",
        "messages": [{"role": "user", "content": "hi"}],
        "llm_params": {"max_tokens": 3, "model": "sim-2"},
        "provider": "sim",
        "on_disconnect": "detach",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "bad id!", "messages": []}, "id"),
        ({"id": "c", "messages": []}, "messages"),
        ({"id": "c", "messages": [{"role": "tool", "parts": []}]}, "messages[0].role"),
        (
            {
                "id": "c",
                "messages": [
                    {"role": "user", "parts": [{"type": "file", "mediaType": "application/pdf"}]}
                ],
            },
            "messages[0].parts[0].mediaType",
        ),
        ({"id": "c", "messages": [{"role": "user", "parts": []}], "temperature": 1}, "temperature"),
    ],
)
def test_bad_chat_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        ui_chat_body(body)
    assert caught.value.message.startswith(field + ":")


def test_with_a_tally_the_same_bytes_and_every_event_counted() -> None:
    events = Events().start().reasoning("r").text("a", "b").complete().events
    tally = TransportTally()
    counted = UiMessageStream("msg-1", tally)
    raw = b"".join(counted.encode([e]) for e in events)
    plain = UiMessageStream("msg-1")
    assert raw == b"".join(plain.encode([e]) for e in events)
    assert tally.events["content_chunk"] == 2 and tally.events["stream_end"] == 1
    assert sum(tally.bytes.values()) == len(raw)
