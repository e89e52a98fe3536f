"""What each adapter puts on the wire for a PROTOCOL.md section 9 request: images, an
assistant turn with signed reasoning and tool calls, a tool turn, tools, tool_choice,
reasoning, seed, top_k, stop and provider_options, each in its provider's own place; and
what a provider has no place for is refused with invalid_field naming it."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.errors import ErrorCode, ProtocolError
from server.protocol.envelope import (
    ContentPart,
    ImagePart,
    Message,
    NamedTool,
    Reasoning,
    ReasoningConfig,
    TextPart,
    Tool,
    ToolCall,
)
from server.providers.base import Provider, ProviderRequest
from tests.providers.conftest import KINDS
from tests.providers.test_adapters_rich import adapter
from tests.providers.upstream import Record, Upstream

PNG = "iVBORw0KGgo="
IMAGE_URL = "https://example.com/map.png"
SIGNATURE = base64.b64encode(b"sig").decode()
WEATHER = Tool(
    "get_weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "Weather in a city",
)
CALL = ToolCall("call_1", "get_weather", {"city": "Oslo"}, signature=SIGNATURE)


def loop(*, url_image: bool = True) -> tuple[Message, ...]:
    parts: list[ContentPart] = [
        TextPart("Where is this? "),
        ImagePart(f"data:image/png;base64,{PNG}"),
    ]
    if url_image:
        parts.append(ImagePart(IMAGE_URL))
    return (
        Message("user", "Where is this? ", parts=tuple(parts)),
        Message(
            "assistant",
            "",
            tool_calls=(CALL,),
            reasoning=Reasoning("Look it up.", SIGNATURE),
        ),
        Message("tool", '{"temp": 3}', tool_call_id="call_1"),
    )


def rich(kind: str, **fields: Any) -> ProviderRequest:
    params: dict[str, Any] = {"max_tokens": 50}
    params |= {"stop": ["END"]} if kind != "openai_responses" else {}
    params |= {"seed": 7, "top_k": 40} if kind in ("openai", "gemini", "ollama") else {}
    named = kind != "ollama"  # Ollama has no tool_choice
    request: dict[str, Any] = {
        "messages": loop(url_image=kind != "ollama"),
        "model": "m",
        "system": "Be brief.",
        "params": params | {"provider_options": OPTIONS[kind]},
        "tools": (WEATHER,),
        "tool_choice": NamedTool("get_weather") if named else "auto",
        "reasoning": ReasoningConfig(effort="low"),
    }
    if kind in ("anthropic", "gemini"):
        request["reasoning"] = ReasoningConfig(budget_tokens=2048)
    return ProviderRequest(**request | fields)


OPTIONS: dict[str, dict[str, Any]] = {
    "openai": {"logit_bias": {"50256": -100}},
    "anthropic": {"metadata": {"user_id": "u1"}},
    "gemini": {"labels": {"team": "a"}},
    "ollama": {"keep_alive": "5m"},
    "openai_responses": {"store": True},
}


@pytest.fixture
async def one(upstream: Upstream) -> AsyncIterator[dict[str, Provider]]:
    made: dict[str, Provider] = {}
    yield made
    for provider in made.values():
        await provider.aclose()


async def send(
    kind: str, upstream: Upstream, made: dict[str, Provider], request: ProviderRequest
) -> Record:
    made[kind] = provider = adapter(kind, upstream)
    events = [event async for event in provider.stream(request)]
    assert events, "the upstream answered"
    (record,) = upstream.requests("m")
    return record


async def test_openai_chat(upstream: Upstream, one: dict[str, Provider]) -> None:
    body = (await send("openai", upstream, one, rich("openai"))).body
    system, user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user["content"] == [
        {"type": "text", "text": "Where is this? "},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": IMAGE_URL}},
    ]
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'}
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER.parameters,
                "description": "Weather in a city",
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["reasoning_effort"] == "low"
    assert (body["seed"], body["top_k"], body["stop"]) == (7, 40, ["END"])
    assert body["logit_bias"] == {"50256": -100}  # provider_options, verbatim


async def test_anthropic(upstream: Upstream, one: dict[str, Provider]) -> None:
    body = (await send("anthropic", upstream, one, rich("anthropic"))).body
    user, assistant, results = body["messages"]
    assert user["content"] == [
        {"type": "text", "text": "Where is this? "},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
    ]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Look it up.", "signature": SIGNATURE},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
    }
    assert results == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp": 3}'}],
    }
    assert body["system"] == "Be brief."
    assert body["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER.parameters,
            "description": "Weather in a city",
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u1"}


async def test_anthropic_effort_is_adaptive_thinking(
    upstream: Upstream, one: dict[str, Provider]
) -> None:
    request = rich("anthropic", reasoning=ReasoningConfig(effort="high"), tool_choice="required")
    body = (await send("anthropic", upstream, one, request)).body
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "high"}
    assert body["tool_choice"] == {"type": "any"}


async def test_gemini(upstream: Upstream, one: dict[str, Provider]) -> None:
    body = (await send("gemini", upstream, one, rich("gemini"))).body
    user, model, results = body["contents"]
    assert user == {
        "role": "user",
        "parts": [
            {"text": "Where is this? "},
            # google-genai writes these two in the proto field names, which the API
            # accepts as well as the camelCase ones
            {"inlineData": {"data": PNG, "mime_type": "image/png"}},
            {"fileData": {"file_uri": IMAGE_URL, "mime_type": "image/png"}},
        ],
    }
    assert model == {
        "role": "model",
        "parts": [
            {"text": "Look it up.", "thought": True, "thoughtSignature": SIGNATURE},
            {
                "functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Oslo"}},
                "thoughtSignature": SIGNATURE,
            },
        ],
    }
    response = {"id": "call_1", "name": "get_weather", "response": {"result": '{"temp": 3}'}}
    assert results == {"role": "user", "parts": [{"functionResponse": response}]}
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    (declaration,) = body["tools"][0]["functionDeclarations"]
    assert declaration["parameters_json_schema"] == WEATHER.parameters  # as the SDK names it
    calling = body["toolConfig"]["functionCallingConfig"]
    assert calling == {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    config = body["generationConfig"]
    assert config["thinkingConfig"] == {"include_thoughts": True, "thinking_budget": 2048}
    assert (config["seed"], config["topK"], config["stopSequences"]) == (7, 40, ["END"])
    assert body["labels"] == {"team": "a"}


async def test_ollama(upstream: Upstream, one: dict[str, Provider]) -> None:
    body = (await send("ollama", upstream, one, rich("ollama"))).body
    system, user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user == {"role": "user", "content": "Where is this? ", "images": [PNG]}
    assert assistant == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
        "thinking": "Look it up.",
    }
    assert tool == {"role": "tool", "content": '{"temp": 3}', "tool_name": "get_weather"}
    assert body["tools"][0]["function"]["parameters"] == WEATHER.parameters
    assert body["think"] == "low"
    assert body["options"] == {"num_predict": 50, "top_k": 40, "seed": 7, "stop": ["END"]}
    assert body["keep_alive"] == "5m"


async def test_openai_responses(upstream: Upstream, one: dict[str, Provider]) -> None:
    body = (await send("openai_responses", upstream, one, rich("openai_responses"))).body
    user, call, output = body["input"]
    assert user == {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Where is this? "},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            {"type": "input_image", "image_url": IMAGE_URL},
        ],
    }
    assert call == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": json.dumps({"city": "Oslo"}),
    }
    assert output == {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 3}'}
    assert body["instructions"] == "Be brief." and body["max_output_tokens"] == 50
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": WEATHER.parameters,
            "strict": False,
            "description": "Weather in a city",
        }
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["store"] is True  # provider_options win


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        ("anthropic", {"params": {"temperature": 0.5}}, "params.temperature"),
        ("anthropic", {"params": {"seed": 1}}, "params.seed"),
        ("openai_responses", {"params": {"stop": ["x"]}}, "params.stop"),
        ("openai_responses", {"params": {"top_k": 5}}, "params.top_k"),
        ("openai", {"reasoning": ReasoningConfig(budget_tokens=9)}, "reasoning.budget_tokens"),
        ("ollama", {"reasoning": ReasoningConfig(budget_tokens=9)}, "reasoning.budget_tokens"),
        ("ollama", {"tools": (WEATHER,), "tool_choice": "required"}, "tool_choice"),
        (
            "ollama",
            {"messages": (Message("user", "x", parts=(ImagePart(IMAGE_URL),)),)},
            "messages[0].content[0].url",
        ),
        ("gemini", {"params": {"ttft_ms": 5}}, "params.ttft_ms"),
    ]
    + [(kind, {"params": {"reasoning_tokens": 3}}, "params.reasoning_tokens") for kind in KINDS],
)
async def test_what_a_provider_has_no_place_for_is_refused(
    kind: str, fields: dict[str, Any], field: str, upstream: Upstream, one: dict[str, Provider]
) -> None:
    request = ProviderRequest(**{"messages": (Message("user", "Hi"),), "model": "m"} | fields)
    one[kind] = provider = adapter(kind, upstream)
    with pytest.raises(ProtocolError) as caught:
        async for _ in provider.stream(request):
            pass
    assert caught.value.code is ErrorCode.INVALID_FIELD
    assert caught.value.message.startswith(field + ":"), caught.value.message
    assert not upstream.records


async def test_openai_proper_refuses_top_k_but_compatible_servers_get_it() -> None:
    from server.config import ProviderConfig
    from server.providers.openai_chat import OpenAIProvider

    request = ProviderRequest(messages=(Message("user", "Hi"),), params={"top_k": 5})
    official = OpenAIProvider("openai", ProviderConfig(type="openai", model="m", api_key="k"))
    with pytest.raises(ProtocolError, match=r"^params\.top_k: openai has no such setting"):
        official.request_params(request)
    compatible = ProviderConfig(
        type="openai", model="m", api_key="k", base_url="http://127.0.0.1:8000/v1"
    )
    assert OpenAIProvider("vllm", compatible).request_params(request) == {
        "extra_body": {"top_k": 5}
    }
