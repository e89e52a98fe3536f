"""Every adapter's rich stream reaches the client as PROTOCOL.md section 9 events: two
parallel tool calls and interleaved reasoning over WebSocket (each provider) and SSE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from server.app import RunningServer
from server.config import Config
from tests._client import check_session
from tests._sse import parse_sse
from tests.conftest import ConfigFactory
from tests.providers.conftest import KINDS, entry
from tests.providers.scripts import CITED, SIGNATURE, TOOL_LOOP
from tests.providers.test_providers_functional import run_session
from tests.providers.upstream import Reply, Upstream

Start = Callable[[Config], Any]
USAGE = {
    "openai": (20, 5, 12),
    "anthropic": (25, 5, 12),
    "gemini": (20, 5, 12),
    "ollama": (20, None, None),
    "openai_responses": (20, 5, 12),
}


@pytest.mark.parametrize("kind", KINDS)
async def test_parallel_calls_and_interleaved_reasoning_over_websocket(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    server: RunningServer = await start(make_config(providers={"p": entry(kind, upstream, "m")}))
    upstream.plan("m", Reply(script=TOOL_LOOP))
    events = await run_session(server, "p", model="m")
    end = check_session(events)
    assert end["reason"] == "complete" and end["text"] == "Checking both. "
    assert end["reasoning"] == "Two cities, so two calls.Oslo first, then Lima."
    kinds = [e["type"] for e in events]
    first_text = kinds.index("content_chunk")
    assert (
        kinds.index("reasoning_chunk")
        < first_text
        < len(kinds) - kinds[::-1].index("reasoning_chunk")
    )
    assert [(c["name"], c["arguments"]) for c in end["tool_calls"]] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Lima", "days": 2}),
    ]
    metadata = [e["data"] for e in events if e["type"] == "metadata"][-1]
    assert metadata["finish_reason"] == "tool_calls"
    input_tokens, cached, reasoning = USAGE[kind]
    usage = metadata["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (input_tokens, 30)
    assert (usage.get("cached_input_tokens"), usage.get("reasoning_tokens")) == (cached, reasoning)
    complete = events[-2]["data"]
    if kind == "anthropic":  # the signature to send back with the next turn
        assert complete["reasoning"]["signature"] == SIGNATURE
    if kind == "gemini":
        assert complete["tool_calls"][0]["signature"]


async def test_parallel_calls_and_sources_over_sse(
    upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    providers = {"p": entry("openai", upstream, "m"), "q": entry("anthropic", upstream, "c")}
    server: RunningServer = await start(make_config(providers=providers))
    upstream.plan("m", Reply(script=TOOL_LOOP))
    upstream.plan("c", Reply(script=CITED))
    async with aiohttp.ClientSession() as http:
        body = {"prompt": "Weather?", "provider": "p", "llm_params": {"model": "m"}}
        async with http.post(server.url + "/api/stream", json=body) as response:
            events, _ = parse_sse(await response.read())
        body = {"prompt": "Weather?", "provider": "q", "llm_params": {"model": "c"}}
        async with http.post(server.url + "/api/stream", json=body) as response:
            cited, _ = parse_sse(await response.read())
    end = check_session(events)
    deltas = [e["data"]["id"] for e in events if e["type"] == "tool_call_delta"]
    assert deltas == ["call_a", "call_b", "call_a", "call_b"]  # interleaved, told apart by id
    assert [c["id"] for c in end["tool_calls"]] == ["call_a", "call_b"]
    check_session(cited)
    (source,) = [e["data"] for e in cited if e["type"] == "source"]
    assert source == {"url": "https://example.com/oslo", "title": "Oslo", "cited_text": "cold"}
