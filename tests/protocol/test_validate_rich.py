"""PROTOCOL.md section 9 requests: parts, tool turns, tools, tool_choice, reasoning and
params are typed, or refused with invalid_field naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import ErrorCode, ProtocolError
from server.protocol.envelope import (
    ImagePart,
    Message,
    NamedTool,
    Reasoning,
    ReasoningConfig,
    Start,
    TextPart,
    Tool,
    ToolCall,
)
from server.protocol.validate import InputLimits, parse_client_message, parse_http_request

LIMITS = InputLimits(max_prompt_chars=500, max_messages=8)
PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
LOOP = [
    {"role": "system", "content": "Be brief"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is here, "},
            {"type": "image", "url": PNG},
            {"type": "image", "url": "https://example.com/a.jpg"},
            {"type": "text", "text": "and the weather?"},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "reasoning": {"text": "Need the weather.", "signature": "sig=="},
        "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
]


def start(**data: Any) -> Start:
    message = parse_client_message({"type": "start", "session": "s", "data": data}, LIMITS)
    assert isinstance(message, Start)
    return message


def test_a_whole_tool_loop_with_images_and_reasoning_is_typed() -> None:
    message = start(
        messages=LOOP,
        tools=[WEATHER],
        tool_choice={"name": "get_weather"},
        reasoning={"effort": "low"},
        params={"seed": 7, "top_k": 40, "stop": "END", "provider_options": {"a": {"b": 1}}},
    )
    system, user, assistant, tool = message.messages
    assert system == Message("system", "Be brief")
    assert user.content == "What is here, and the weather?"
    assert user.parts == (
        TextPart("What is here, "),
        ImagePart(PNG),
        ImagePart("https://example.com/a.jpg"),
        TextPart("and the weather?"),
    )
    assert ImagePart(PNG).inline == ("image/png", "iVBORw0KGgo=")
    assert ImagePart("https://example.com/a.jpg").inline is None
    assert assistant == Message(
        "assistant",
        "",
        tool_calls=(ToolCall("call_1", "get_weather", {"city": "Oslo"}),),
        reasoning=Reasoning("Need the weather.", "sig=="),
    )
    assert tool == Message("tool", '{"temp": 3}', tool_call_id="call_1")
    assert message.tools == (Tool("get_weather", WEATHER["parameters"], "Weather in a city"),)
    assert message.tool_choice == NamedTool("get_weather")
    assert message.reasoning == ReasoningConfig(effort="low")
    assert message.params["provider_options"] == {"a": {"b": 1}}


def test_defaults_and_the_other_reasoning_forms() -> None:
    assert start(prompt="Hi").tool_choice == "auto" and start(prompt="Hi").reasoning is None
    assert start(prompt="x", reasoning={"budget_tokens": 2048}).reasoning == ReasoningConfig(
        budget_tokens=2048
    )
    off = start(prompt="x", reasoning={"enabled": False}).reasoning
    assert off == ReasoningConfig(enabled=False)


def test_the_http_body_takes_the_same_keys_at_the_top_level() -> None:
    body = {"messages": LOOP, "tools": [WEATHER], "tool_choice": "required"}
    parsed = parse_http_request(body, LIMITS, default_session="g")
    assert parsed.tools[0].name == "get_weather" and parsed.tool_choice == "required"
    with pytest.raises(ProtocolError, match=r"^response_format: is not a known field"):
        parse_http_request({"prompt": "x", "response_format": {}}, LIMITS, default_session="g")


def turn(**fields: Any) -> dict[str, Any]:
    return {"messages": [fields]}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"prompt": "x", "temperature": 1}, "data.temperature"),
        ({"prompt": "x", "params": {"response_format": {}}}, "data.params.response_format"),
        ({"prompt": "x", "params": {"seed": 1.5}}, "data.params.seed"),
        ({"prompt": "x", "params": {"top_k": 0}}, "data.params.top_k"),
        ({"prompt": "x", "params": {"stop": [1]}}, "data.params.stop"),
        ({"prompt": "x", "params": {"stop": []}}, "data.params.stop"),
        ({"prompt": "x", "params": {"provider_options": []}}, "data.params.provider_options"),
        ({"prompt": "x", "params": {"reasoning_tokens": -1}}, "data.params.reasoning_tokens"),
        (turn(role="user", content=[{"type": "audio"}]), "data.messages[0].content[0]"),
        (turn(role="user", content=[]), "data.messages[0].content"),
        (
            turn(role="user", content=[{"type": "image", "url": "http://x/a.png"}]),
            "data.messages[0].content[0].url",
        ),
        (
            turn(role="user", content=[{"type": "image", "url": "data:image/png,notbase64"}]),
            "data.messages[0].content[0].url",
        ),
        (
            turn(role="assistant", content=[{"type": "image", "url": PNG}]),
            "data.messages[0].content[0]",
        ),
        (turn(role="user", content="x", name="bob"), "data.messages[0].name"),
        (turn(role="tool", content="x"), "data.messages[0].tool_call_id"),
        (turn(role="user", content="x", tool_call_id="c"), "data.messages[0].tool_call_id"),
        (turn(role="user", content="x", tool_calls=[]), "data.messages[0].tool_calls"),
        (
            turn(
                role="assistant",
                content="",
                tool_calls=[{"id": "c", "name": "f", "arguments": "{}"}],
            ),
            "data.messages[0].tool_calls[0].arguments",
        ),
        (
            turn(role="assistant", content="", tool_calls=[{"name": "f"}]),
            "data.messages[0].tool_calls[0].id",
        ),
        (turn(role="assistant", content="", reasoning="hm"), "data.messages[0].reasoning"),
        (
            turn(role="assistant", content="", reasoning={"text": "hm", "x": 1}),
            "data.messages[0].reasoning.x",
        ),
        ({"prompt": "x", "tools": {}}, "data.tools"),
        ({"prompt": "x", "tools": [{"name": "1up", "parameters": {}}]}, "data.tools[0].name"),
        ({"prompt": "x", "tools": [WEATHER, WEATHER]}, "data.tools[1].name"),
        ({"prompt": "x", "tools": [{**WEATHER, "strict": True}]}, "data.tools[0].strict"),
        (
            {"prompt": "x", "tools": [{"name": "f", "parameters": {"type": "array"}}]},
            "data.tools[0].parameters",
        ),
        ({"prompt": "x", "tool_choice": "any"}, "data.tool_choice"),
        ({"prompt": "x", "tool_choice": "required"}, "data.tool_choice"),
        (
            {"prompt": "x", "tools": [WEATHER], "tool_choice": {"name": "f"}},
            "data.tool_choice.name",
        ),
        ({"prompt": "x", "reasoning": {"effort": "max"}}, "data.reasoning.effort"),
        ({"prompt": "x", "reasoning": {"budget_tokens": 0}}, "data.reasoning.budget_tokens"),
        ({"prompt": "x", "reasoning": {"enabled": True}}, "data.reasoning.enabled"),
        ({"prompt": "x", "reasoning": {"effort": "low", "budget_tokens": 9}}, "data.reasoning"),
        ({"prompt": "x", "reasoning": {"level": 1}}, "data.reasoning.level"),
    ],
)
def test_every_bad_field_is_invalid_field_naming_it(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        start(**data)
    assert caught.value.code is ErrorCode.INVALID_FIELD
    assert caught.value.message.startswith(field + ":"), caught.value.message
