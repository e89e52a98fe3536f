"""Each adapter's ``stream(request)`` against the local upstream: the typed events of a
rich reply (interleaved reasoning, two parallel tool calls, citations, refusals), the
failures after reasoning, and a cancel in the middle of a think."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
from openai.types.chat import ChatCompletionChunk

from server.config import ProviderConfig
from server.errors import ProviderError
from server.protocol.envelope import Message
from server.providers.anthropic_messages import AnthropicProvider
from server.providers.base import (
    Finish,
    Provider,
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
from server.providers.common import ToolCalls
from server.providers.gemini import GeminiProvider
from server.providers.ollama import OllamaProvider
from server.providers.openai_chat import OpenAIProvider, _chunk_events
from server.providers.openai_responses import OpenAIResponsesProvider
from server.providers.resilience import ResilientProvider, RetryPolicy, Route
from tests.providers.conftest import KINDS
from tests.providers.scripts import CALL_SIGNATURE, CITED, REDACTED, REFUSED, SIGNATURE, TOOL_LOOP
from tests.providers.upstream import Reply, Upstream
from tests.providers.wire import Say, Script

ADAPTERS: dict[str, Callable[[str, ProviderConfig], Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "ollama": OllamaProvider,
    "openai_responses": OpenAIResponsesProvider,
}
ASK = ProviderRequest(messages=(Message("user", "Weather in Oslo and Lima?"),), model="m")
# Frames each wire sends before (and including) the first piece of reasoning.
FIRST_THOUGHT = {"openai": 2, "anthropic": 3, "gemini": 1, "ollama": 1, "openai_responses": 5}
USAGE = {
    "openai": Usage(20, 30, 5, 12),
    "anthropic": Usage(25, 30, 5, 12),  # Anthropic counts cache reads apart: 20 + 5
    "gemini": Usage(20, 30, 5, 12),
    "ollama": Usage(20, 30),
    "openai_responses": Usage(20, 30, 5, 12),
}
RAW_FINISH = {
    "openai": "tool_calls",
    "anthropic": "tool_use",
    "gemini": "STOP",
    "ollama": "stop",
    "openai_responses": "completed",
}


@pytest.fixture
async def adapters(upstream: Upstream) -> AsyncIterator[dict[str, Provider]]:
    made = {kind: adapter(kind, upstream) for kind in KINDS}
    yield made
    for provider in made.values():
        await provider.aclose()


def adapter(kind: str, upstream: Upstream) -> Provider:
    base_url = upstream.url + "/v1" if kind.startswith("openai") else upstream.url
    config = ProviderConfig(type=kind, model="m", api_key="k", base_url=base_url)
    return ADAPTERS[kind](kind, config)


async def collect(provider: Provider, request: ProviderRequest = ASK) -> list[ProviderEvent]:
    return [event async for event in provider.stream(request)]


def texts(events: list[ProviderEvent], kind: type[TextDelta | ReasoningDelta | Refusal]) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


@pytest.mark.parametrize("kind", KINDS)
async def test_interleaved_reasoning_and_two_parallel_calls(
    kind: str, upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    upstream.plan("m", Reply(script=TOOL_LOOP))
    events = await collect(adapters[kind])
    assert texts(events, ReasoningDelta) == "Two cities, so two calls.Oslo first, then Lima."
    assert texts(events, TextDelta) == "Checking both. "
    # Reasoning, text, reasoning again, then the calls: in the order the model sent them.
    order = [type(e).__name__ for e in events if not isinstance(e, ToolCallDelta)]
    first_text = order.index("TextDelta")
    assert order.index("ReasoningDelta") < first_text
    assert first_text < len(order) - order[::-1].index("ReasoningDelta") - 1
    assert order.index("ToolCallStart") > first_text
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = {e.id: e for e in events if isinstance(e, ToolCallEnd)}
    assert [(s.name, s.index) for s in starts] == [("get_weather", 0), ("get_weather", 1)]
    assert [ends[s.id].arguments for s in starts] == [{"city": "Oslo"}, {"city": "Lima", "days": 2}]
    for start in starts:
        fragments = [
            e.arguments_delta for e in events if isinstance(e, ToolCallDelta) and e.id == start.id
        ]
        assert json.loads("".join(fragments)) == ends[start.id].arguments
        assert "".join(fragments) == ends[start.id].arguments_text
    if kind in ("openai", "anthropic", "openai_responses"):
        assert [s.id for s in starts] == ["call_a", "call_b"]  # the provider's own ids
    else:
        assert all(s.id.startswith("call_") for s in starts) and starts[0].id != starts[1].id
    if kind == "openai":  # parallel calls stream interleaved, told apart by id
        deltas = [e.id for e in events if isinstance(e, ToolCallDelta)]
        assert deltas == ["call_a", "call_b", "call_a", "call_b"]
    if kind == "anthropic":
        signatures = [e.signature for e in events if isinstance(e, ReasoningDelta) and e.signature]
        assert signatures == [SIGNATURE, SIGNATURE]
    if kind == "gemini":
        assert ends[starts[0].id].signature == CALL_SIGNATURE
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage == USAGE[kind]
    assert events[-1] == Finish("tool_calls", "m", RAW_FINISH[kind])


@pytest.mark.parametrize("kind", ["openai", "anthropic", "openai_responses"])
async def test_a_refusal_is_refusal_not_an_empty_answer(
    kind: str, upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    upstream.plan("m", Reply(script=REFUSED))
    events = await collect(adapters[kind])
    if kind == "anthropic":  # Anthropic says it with stop_reason "refusal"
        assert events[-1] == Finish("content_filter", "m", "refusal")
        return
    assert texts(events, Refusal) == "I can't help with that."
    assert not texts(events, TextDelta)


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "openai_responses"])
async def test_citations_become_sources(
    kind: str, upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    upstream.plan("m", Reply(script=CITED))
    events = await collect(adapters[kind])
    (source,) = [e for e in events if isinstance(e, Source)]
    assert (source.url, source.title) == ("https://example.com/oslo", "Oslo")
    if kind == "anthropic":
        assert source.cited_text == "cold"
    assert texts(events, TextDelta) == "Oslo is cold today."


async def test_anthropic_redacted_thinking_is_kept_opaque(
    upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    upstream.plan("m", Reply(script=REDACTED))
    events = await collect(adapters["anthropic"])
    assert ReasoningDelta("", redacted="ZW5jcnlwdGVkLXJlYXNvbmluZw==") in events


async def test_anthropic_input_tokens_that_arrive_at_the_end_are_counted(
    upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    """A compatible proxy (LiteLLM) sends 0 in message_start, the real count at the end."""
    late = Script(items=TOOL_LOOP.items, input_tokens=20, cached_tokens=5, input_at_end=True)
    upstream.plan("m", Reply(script=late))
    events = await collect(adapters["anthropic"])
    usage = next(e for e in events if isinstance(e, Usage))
    assert (usage.input_tokens, usage.cached_input_tokens) == (25, 5)


def resilient(provider: Provider) -> ResilientProvider:
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)
    return ResilientProvider([Route(provider, policy)])


async def test_a_prompt_gemini_blocks_is_a_refusal_and_not_retried(
    upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    upstream.plan("m", Reply(script=Script(items=(), blocked="PROHIBITED_CONTENT")))
    events = await collect(resilient(adapters["gemini"]))
    assert isinstance(events[0], Refusal) and "PROHIBITED_CONTENT" in events[0].text
    assert events[-1] == Finish("content_filter", "m", "PROHIBITED_CONTENT")
    assert len(upstream.requests("m")) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("failure", ["drop", "error-event"])
async def test_a_failure_after_reasoning_is_an_error_and_not_retried(
    kind: str, failure: str, upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    """Reasoning reached the consumer: a retry would repeat it (and bill it again)."""
    at = FIRST_THOUGHT[kind]
    failing = Reply(script=TOOL_LOOP, drop_after=at if failure == "drop" else None)
    upstream.plan("m", failing if failure == "drop" else Reply(script=TOOL_LOOP, error_after=at))
    seen: list[ProviderEvent] = []
    with pytest.raises(ProviderError) as caught:
        async for event in resilient(adapters[kind]).stream(ASK):
            seen.append(event)
    assert caught.value.code == "provider_error"
    assert any(isinstance(e, ReasoningDelta) and e.text for e in seen)
    assert len(upstream.requests("m")) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cancel_in_the_middle_of_a_think_closes_the_upstream_connection(
    kind: str, upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    upstream.plan("m", Reply(script=TOOL_LOOP, hang_after=FIRST_THOUGHT[kind]))
    thinking = asyncio.Event()

    async def consume() -> None:
        async for event in adapters[kind].stream(ASK):
            if isinstance(event, ReasoningDelta):
                thinking.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await thinking.wait()
    task.cancel()
    await asyncio.wait([task])
    async with asyncio.timeout(1):
        await upstream.requests("m")[0].disconnected.wait()


@pytest.mark.parametrize(
    ("kind", "raw", "normal"),
    [
        ("openai", "length", "length"),
        ("anthropic", "pause_turn", "other"),
        ("anthropic", "max_tokens", "length"),
        ("gemini", "MAX_TOKENS", "length"),
        ("gemini", "SAFETY", "content_filter"),
        ("ollama", "length", "length"),
        ("openai_responses", "max_output_tokens", "length"),
        ("openai_responses", "content_filter", "content_filter"),
    ],
)
async def test_the_providers_own_finish_word_is_kept(
    kind: str, raw: str, normal: str, upstream: Upstream, adapters: dict[str, Provider]
) -> None:
    upstream.plan("m", Reply(script=Script(items=(Say("Cut sh"),), finish=raw)))
    events = await collect(adapters[kind])
    assert events[-1] == Finish(normal, "m", raw)


def test_openrouter_style_reasoning_is_read_too() -> None:
    """``delta.reasoning`` (OpenRouter, newer vLLM) as well as ``reasoning_content``."""
    choice = {"index": 0, "delta": {"reasoning": "Hmm."}, "finish_reason": None}
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [choice],
        }
    )
    assert _chunk_events(chunk, ToolCalls()) == [ReasoningDelta("Hmm.")]
