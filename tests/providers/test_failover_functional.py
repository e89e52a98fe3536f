"""failover: continue against local upstreams: a provider that fails mid-stream is
continued by its fallback, with one contiguous text and nothing repeated."""

from __future__ import annotations

from typing import Any

from server.providers.continuation import CONTINUE_INSTRUCTION
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory, Starter
from tests.providers.conftest import entry
from tests.providers.scripts import TOOL_LOOP
from tests.providers.upstream import Reply, Upstream

SENTENCE = "The quick brown fox jumps over the lazy dog."


async def run(
    start: Starter, make_config: ConfigFactory, providers: dict[str, Any]
) -> list[dict[str, Any]]:
    """One session on provider a (with fallback b); its events."""
    server = await start(make_config(providers={"default": "a", **providers}))
    client = await WsClient.connect(server.url)
    await client.start("s1", "Say the sentence.")
    await client.until_ended({"s1"})
    await client.close()
    return client.events["s1"]


def chain(upstream: Upstream, b_kind: str, failover: str = "continue") -> dict[str, Any]:
    return {
        "a": entry("openai", upstream, "model-a", fallbacks=["b"], failover=failover),
        "b": entry(b_kind, upstream, "model-b"),
    }


async def test_a_mid_stream_500_continues_on_the_fallback_without_repeats(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    # a sends "The quick b" + "rown fox ju", then an in-stream server error; b, asked to
    # continue, repeats the last words (as models do) before going on.
    upstream.plan("model-a", Reply(text=SENTENCE, chunks=4, error_after=2))
    upstream.plan("model-b", Reply(text="brown fox jumps over the lazy dog.", chunks=3))
    events = await run(start, make_config, chain(upstream, "openai"))
    end = check_session(events)
    assert end["reason"] == "complete"
    assert end["text"] == SENTENCE
    (failover,) = [e["data"] for e in events if "failover" in e["data"]]
    assert failover == {"failover": {"from": "a", "to": "b", "at_chars": 22}}
    continued = (await upstream.wait_for_request("model-b")).body["messages"]
    assert continued[-2:] == [
        {"role": "assistant", "content": "The quick brown fox ju"},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    ]


async def test_an_anthropic_fallback_continues_a_prefill(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    upstream.plan("model-a", Reply(text="The quick brown fox jumps", chunks=5, error_after=4))
    upstream.plan("model-b", Reply(text=" jumps over the lazy dog.", chunks=2))
    events = await run(start, make_config, chain(upstream, "anthropic"))
    assert check_session(events)["text"] == SENTENCE
    continued = (await upstream.wait_for_request("model-b")).body["messages"]
    assert continued[-1] == {"role": "assistant", "content": "The quick brown fox"}


async def test_off_by_default_a_mid_stream_failure_ends_the_session(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    upstream.plan("model-a", Reply(text=SENTENCE, chunks=4, error_after=2))
    events = await run(start, make_config, chain(upstream, "openai", failover="off"))
    end = check_session(events)
    assert end["reason"] == "error" and end["text"] == "The quick brown fox ju"
    assert upstream.requests("model-b") == []


async def test_a_failure_after_a_tool_call_began_is_not_continued(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    upstream.plan("model-a", Reply(script=TOOL_LOOP, error_after=8))
    server = await start(make_config(providers={"default": "a", **chain(upstream, "openai")}))
    client = await WsClient.connect(server.url)
    tool = {"name": "get_weather", "parameters": {"type": "object"}}
    await client.start("s1", "Weather?", tools=[tool])
    await client.until_ended({"s1"})
    await client.close()
    types = [e["type"] for e in client.events["s1"]]
    assert "tool_call_start" in types and types[-2:] == ["error", "stream_end"], types
    assert upstream.requests("model-b") == []
