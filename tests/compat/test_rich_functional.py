"""Reasoning, tool calls and sources from the simulator through /v1/chat/completions and
/api/chat, read by the openai Python SDK and on raw HTTP (PROTOCOL.md §9-§11)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from server.app import RunningServer

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Oslo?"}]
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[openai.AsyncOpenAI]:
    options: dict[str, Any] = {"api_key": "unused", "max_retries": 0}
    sdk = await asyncio.to_thread(openai.AsyncOpenAI, base_url=server.url + "/v1", **options)
    yield sdk
    await sdk.close()


async def test_reasoning_and_a_tool_call_then_the_round_trip(client: openai.AsyncOpenAI) -> None:
    reasoning = ""
    async with client.chat.completions.stream(
        model="sim",
        messages=ASK,
        tools=TOOLS,
        stream_options={"include_usage": True},
        extra_body={"params": {"reasoning_tokens": 4}},
    ) as stream:
        async for event in stream:
            if event.type == "chunk" and event.chunk.choices:
                extra = event.chunk.choices[0].delta.model_extra or {}
                reasoning += extra.get("reasoning_content") or ""
        final = await stream.get_final_completion()
    assert len(reasoning.split()) == 4
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    assert final.usage is not None
    answer = await client.chat.completions.create(
        model="sim",
        tools=TOOLS,
        messages=[
            *ASK,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "3 degrees and rain"},
        ],
    )
    assert answer.choices[0].finish_reason == "stop"
    assert "3 degrees and rain" in (answer.choices[0].message.content or "")


async def test_sources_are_url_citations(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim", messages=ASK, stream=True, extra_body={"params": {"sources": 2}}
    )
    annotations: list[dict[str, Any]] = []
    async for chunk in stream:
        if chunk.choices:
            annotations += (chunk.choices[0].delta.model_extra or {}).get("annotations") or []
    assert [a["type"] for a in annotations] == ["url_citation", "url_citation"]
    assert all(a["url_citation"]["url"].startswith("https://") for a in annotations)


async def test_the_ui_stream_carries_reasoning_tools_and_sources(server: RunningServer) -> None:
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Weather?"}]}
    tools = [{"name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}]
    body = {"id": "rich", "messages": [message], "tools": tools, "params": {"reasoning_tokens": 3}}
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.url + "/api/chat", json=body)
        raw = await response.read()
    parts = [json.loads(b[6:]) for b in raw[:-2].split(b"\n\n")[:-1] if b.startswith(b"data: ")]
    kinds = [p["type"] for p in parts]
    assert "reasoning-start" in kinds and "reasoning-end" in kinds
    assert kinds.index("reasoning-end") < kinds.index("tool-input-start")
    call = next(p for p in parts if p["type"] == "tool-input-available")
    assert call["toolName"] == "get_weather" and isinstance(call["input"]["city"], str)
    assert parts[-1]["type"] == "finish" and parts[-1]["finishReason"] == "tool-calls"


async def test_a_refusal_is_the_message_refusal(client: openai.AsyncOpenAI) -> None:
    refuse = {"params": {"refusal": True}}
    whole = await client.chat.completions.create(model="sim", messages=ASK, extra_body=refuse)
    choice = whole.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.refusal and not choice.message.content
    stream = await client.chat.completions.create(
        model="sim", messages=ASK, stream=True, extra_body=refuse
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks) == choice.message.refusal
    assert chunks[-1].choices[0].finish_reason == "content_filter"
