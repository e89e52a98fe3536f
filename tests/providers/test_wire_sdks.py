"""The local upstream speaks each provider's rich stream exactly: the official SDK itself
assembles what it sends (thinking with its signature, parallel tool calls, citations,
refusals, a blocked prompt)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import ollama
import openai
import pytest
from google import genai
from google.genai import types

from tests.providers.scripts import CALL_SIGNATURE, CITED, REDACTED, REFUSED, SIGNATURE, TOOL_LOOP
from tests.providers.upstream import Reply, Upstream
from tests.providers.wire import Script

HI: Any = [{"role": "user", "content": "Weather in Oslo and Lima?"}]


def plan(upstream: Upstream, script: Script) -> None:
    upstream.plan("m", Reply(script=script))


@pytest.fixture
async def openai_client(upstream: Upstream) -> AsyncIterator[openai.AsyncOpenAI]:
    # SDK clients load CA certificates when built: blocking I/O, so not on the loop.
    client = await asyncio.to_thread(
        openai.AsyncOpenAI, api_key="k", base_url=upstream.url + "/v1", max_retries=0
    )
    yield client
    await client.close()


@pytest.fixture
async def anthropic_client(upstream: Upstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = await asyncio.to_thread(
        anthropic.AsyncAnthropic, api_key="k", base_url=upstream.url, max_retries=0
    )
    yield client
    await client.close()


async def test_anthropic_final_message_has_signed_thinking_and_tool_use(
    upstream: Upstream, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    plan(upstream, TOOL_LOOP)
    async with anthropic_client.messages.stream(model="m", max_tokens=99, messages=HI) as stream:
        message = await stream.get_final_message()
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text", "thinking", "tool_use", "tool_use"]
    first, text, _, oslo, lima = message.content
    assert first.type == "thinking" and first.thinking == "Two cities, so two calls."
    assert first.signature == SIGNATURE
    assert text.type == "text" and text.text == "Checking both. "
    assert oslo.type == "tool_use" and (oslo.id, oslo.name) == ("call_a", "get_weather")
    assert oslo.input == {"city": "Oslo"}
    assert lima.type == "tool_use" and lima.input == {"city": "Lima", "days": 2}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 30
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 12


async def test_anthropic_citations_and_redacted_thinking(
    upstream: Upstream, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    upstream.plan("m", Reply(script=CITED), Reply(script=REDACTED))
    async with anthropic_client.messages.stream(model="m", max_tokens=99, messages=HI) as stream:
        cited = await stream.get_final_message()
    (block,) = cited.content
    assert block.type == "text" and block.text == "Oslo is cold today."
    assert block.citations is not None
    citation = block.citations[0]
    assert citation.type == "web_search_result_location"
    assert (citation.url, citation.title) == ("https://example.com/oslo", "Oslo")
    async with anthropic_client.messages.stream(model="m", max_tokens=99, messages=HI) as stream:
        redacted = await stream.get_final_message()
    assert redacted.content[0].type == "redacted_thinking"
    assert redacted.content[0].data == "ZW5jcnlwdGVkLXJlYXNvbmluZw=="


async def test_openai_stream_shows_two_parallel_tool_calls(
    upstream: Upstream, openai_client: openai.AsyncOpenAI
) -> None:
    plan(upstream, TOOL_LOOP)
    async with openai_client.chat.completions.stream(model="m", messages=HI) as stream:
        completion = await stream.get_final_completion()
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking both. "
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city": "Oslo"}'),
        ("call_b", "get_weather", '{"city": "Lima", "days": 2}'),
    ]
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 5


async def test_openai_stream_shows_the_refusal(
    upstream: Upstream, openai_client: openai.AsyncOpenAI
) -> None:
    plan(upstream, REFUSED)
    async with openai_client.chat.completions.stream(model="m", messages=HI) as stream:
        completion = await stream.get_final_completion()
    message = completion.choices[0].message
    assert message.refusal == "I can't help with that." and not message.content


async def test_openai_responses_stream_assembles_text_reasoning_summary_and_calls(
    upstream: Upstream, openai_client: openai.AsyncOpenAI
) -> None:
    plan(upstream, TOOL_LOOP)
    snapshots: list[str] = []
    async with openai_client.responses.stream(model="m", input="Weather?") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                snapshots.append(event.snapshot)
        response = await stream.get_final_response()
    assert snapshots[-1] == "Checking both. "
    assert response.output_text == "Checking both. "
    summaries = [
        part.text for item in response.output if item.type == "reasoning" for part in item.summary
    ]
    assert summaries == ["Two cities, so two calls.", "Oslo first, then Lima."]
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city": "Oslo"}'),
        ("call_b", "get_weather", '{"city": "Lima", "days": 2}'),
    ]
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 12


async def test_openai_responses_stream_shows_the_refusal(
    upstream: Upstream, openai_client: openai.AsyncOpenAI
) -> None:
    plan(upstream, REFUSED)
    async with openai_client.responses.stream(model="m", input="Weather?") as stream:
        response = await stream.get_final_response()
    (item,) = response.output
    assert item.type == "message" and item.content[0].type == "refusal"
    assert item.content[0].refusal == "I can't help with that."


async def gemini_chunks(upstream: Upstream) -> list[types.GenerateContentResponse]:
    async with aiohttp.ClientSession() as http:
        options = types.HttpOptions(
            base_url=upstream.url,
            retry_options=types.HttpRetryOptions(attempts=1),
            aiohttp_client=http,
        )
        client = await asyncio.to_thread(genai.Client, api_key="k", http_options=options)
        stream = await client.aio.models.generate_content_stream(model="m", contents="Weather?")
        chunks = [chunk async for chunk in stream]
        await client.aio.aclose()
        await asyncio.to_thread(client.close)
    return chunks


async def test_google_genai_shows_thought_parts_and_function_calls(upstream: Upstream) -> None:
    plan(upstream, TOOL_LOOP)
    chunks = await gemini_chunks(upstream)
    parts = [
        part
        for chunk in chunks
        for candidate in chunk.candidates or []
        for part in (candidate.content.parts if candidate.content else None) or []
    ]
    thoughts = "".join(p.text or "" for p in parts if p.thought)
    assert thoughts == "Two cities, so two calls.Oslo first, then Lima."
    calls = [p for p in parts if p.function_call is not None]
    assert [(p.function_call.name, p.function_call.args) for p in calls] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Lima", "days": 2}),
    ]
    assert calls[0].thought_signature == base64.b64decode(CALL_SIGNATURE)
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.thoughts_token_count == 12
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


async def test_google_genai_shows_grounding_and_a_blocked_prompt(upstream: Upstream) -> None:
    plan(upstream, CITED)
    chunks = await gemini_chunks(upstream)
    assert chunks[-1].candidates is not None
    grounding = chunks[-1].candidates[0].grounding_metadata
    assert grounding is not None and grounding.grounding_chunks is not None
    web = grounding.grounding_chunks[0].web
    assert web is not None and (web.uri, web.title) == ("https://example.com/oslo", "Oslo")
    plan(upstream, Script(items=(), blocked="PROHIBITED_CONTENT"))
    (blocked,) = await gemini_chunks(upstream)
    assert not blocked.candidates and blocked.prompt_feedback is not None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


async def test_ollama_client_shows_thinking_and_tool_calls(upstream: Upstream) -> None:
    plan(upstream, TOOL_LOOP)
    client = await asyncio.to_thread(ollama.AsyncClient, host=upstream.url)
    thinking, content, last = "", "", None
    calls: list[Any] = []
    async for part in await client.chat(model="m", messages=HI, stream=True):
        thinking += part.message.thinking or ""
        content += part.message.content or ""
        calls += part.message.tool_calls or []
        last = part
    assert thinking == "Two cities, so two calls.Oslo first, then Lima."
    assert content == "Checking both. "
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Lima", "days": 2}),
    ]
    await client.close()  # type: ignore[no-untyped-call]
    assert last is not None and last.done and last.done_reason == "stop"
    assert (last.prompt_eval_count, last.eval_count) == (20, 30)
