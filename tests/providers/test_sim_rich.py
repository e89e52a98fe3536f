"""The simulator does PROTOCOL.md section 9 deterministically: reasoning, tool calls, the
answer to a tool turn, sources and refusals."""

from __future__ import annotations

from typing import Any

from server.config import ProviderConfig
from server.protocol.envelope import Message, NamedTool, Tool, ToolCall
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    Refusal,
    Source,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from server.providers.sim import SimProvider, sim_arguments

WEATHER = Tool(
    "get_weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "hourly": {"type": "boolean"},
        },
        "required": ["city", "unit", "days"],
    },
)
CLOCK = Tool("get_time", {"type": "object", "properties": {}})


async def collect(request: ProviderRequest) -> list[ProviderEvent]:
    return [event async for event in SimProvider("sim", ProviderConfig(type="sim")).stream(request)]


def ask(*messages: Message, **fields: Any) -> ProviderRequest:
    return ProviderRequest(messages=messages or (Message("user", "Hi there"),), **fields)


async def test_reasoning_words_come_before_the_reply_then_its_signature() -> None:
    request = ask(params={"reasoning_tokens": 5, "max_tokens": 3})
    events = await collect(request)
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert len(reasoning) == 6 and all(e.text for e in reasoning[:5])
    assert reasoning[-1].text == "" and (reasoning[-1].signature or "").startswith("sim-")
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert events.index(reasoning[-1]) < first_text
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).startswith("Hi there")
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.reasoning_tokens == 5 and usage.output_tokens == 2 + 3 + 5
    assert events[-1] == Finish("stop", "sim-1", "stop")
    assert events == await collect(request)  # deterministic


async def test_tools_are_called_with_arguments_satisfying_the_schema() -> None:
    events = await collect(ask(tools=(CLOCK, WEATHER), tool_choice=NamedTool("get_weather")))
    start, *deltas, end, usage, finish = events
    assert isinstance(start, ToolCallStart) and start.name == "get_weather" and start.index == 0
    assert all(isinstance(d, ToolCallDelta) and d.id == start.id for d in deltas)
    assert len(deltas) == 3
    assert isinstance(end, ToolCallEnd) and end.id == start.id
    assert end.arguments == {"city": "sample", "unit": "celsius", "days": 1}
    assert "".join(d.arguments_delta for d in deltas if isinstance(d, ToolCallDelta)) == (
        end.arguments_text
    )
    assert isinstance(usage, Usage) and finish == Finish("tool_calls", "sim-1", "tool_calls")
    assert sim_arguments(CLOCK) == {}
    auto = await collect(ask(tools=(CLOCK, WEATHER)))
    assert isinstance(auto[0], ToolCallStart) and auto[0].name == "get_time"


async def test_tool_choice_none_answers_in_text() -> None:
    events = await collect(ask(tools=(WEATHER,), tool_choice="none", params={"max_tokens": 2}))
    assert not any(isinstance(e, ToolCallStart) for e in events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).startswith("Hi there")


async def test_a_tool_turn_is_answered_in_text_quoting_the_result() -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Oslo"})
    request = ask(
        Message("user", "Weather in Oslo?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"temp": 3}', tool_call_id="call_1"),
        tools=(WEATHER,),
        params={"max_tokens": 0},
    )
    events = await collect(request)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == 'get_weather returned: {"temp": 3}'
    assert events[-1] == Finish("stop", "sim-1", "stop")


async def test_sources_and_refusal_knobs() -> None:
    events = await collect(ask(params={"sources": 2, "max_tokens": 1}))
    sources = [e for e in events if isinstance(e, Source)]
    assert sources == [
        Source("https://example.com/sim/1", "Simulated source 1", None, 0),
        Source("https://example.com/sim/2", "Simulated source 2", None, 1),
    ]
    refused = await collect(ask(params={"refusal": True}))
    assert isinstance(refused[0], Refusal) and refused[0].text
    assert not any(isinstance(e, TextDelta) for e in refused)
    assert refused[-1] == Finish("content_filter", "sim-1", "refusal")


async def test_the_seed_picks_other_filler() -> None:
    def text(events: list[ProviderEvent]) -> str:
        return "".join(e.text for e in events if isinstance(e, TextDelta))

    plain = text(await collect(ask(params={"max_tokens": 8})))
    seeded = text(await collect(ask(params={"max_tokens": 8, "seed": 1})))
    assert plain != seeded and seeded == text(
        await collect(ask(params={"max_tokens": 8, "seed": 1}))
    )
