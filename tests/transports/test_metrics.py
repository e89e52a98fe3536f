"""GET /metrics: Prometheus text with live state, per-event tallies and session metrics."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from server.app import RunningServer
from server.config import ProviderConfig
from server.metrics import (
    SessionTally,
    Tallies,
    record_fallback,
    record_provider_error,
    record_retry,
)
from server.protocol.envelope import Message, Start
from server.providers.sim import SimProvider
from server.sessions.outbox import CollectingSink
from server.sessions.session import Session
from server.transports.metrics import AppMetrics
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory, Starter

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await response.text())


async def test_live_gauges_and_session_counters(server: RunningServer) -> None:
    """Open connections and live sessions while streaming; counters after the end."""
    client = await WsClient.connect(server.url)
    await client.start("hang", params={"hang_at": 1})
    await client.receive_until(lambda e: e["type"] == "content_chunk")
    live = await scrape(server.url)
    assert value(live, "tokenmux_open_connections", transport="ws") == 1
    assert value(live, "tokenmux_live_sessions") == 1
    assert value(live, "process_resident_memory_bytes") > 0
    assert value(live, "tokenmux_store_healthy") == 1  # the embedded memory store
    assert "process_cpu_seconds_total" in {name for name, _ in live}

    await client.start("done", params={"max_tokens": 4})
    await client.start("bad", params={"fail_at": 2})
    await client.cancel("hang")
    await client.until_ended({"hang", "done", "bad"})
    await client.close()
    chunks = sum(check_session(client.events[s])["chunks"] for s in ("hang", "done", "bad"))
    after = await scrape(server.url)
    for reason in ("complete", "cancelled", "error"):
        assert value(after, "tokenmux_sessions_ended_total", provider="sim", reason=reason) == 1
    assert (
        value(after, "tokenmux_events_sent_total", transport="ws", type="content_chunk") == chunks
    )
    assert value(after, "tokenmux_events_sent_total", transport="ws", type="ready") == 1
    assert value(after, "tokenmux_bytes_sent_total", transport="ws", type="content_chunk") > 0
    assert (
        value(after, "tokenmux_provider_errors_total", provider="sim", code="provider_error") == 1
    )
    assert value(after, "tokenmux_time_to_first_token_seconds_count", provider="sim") == 3
    assert value(after, "tokenmux_session_duration_seconds_count", provider="sim") == 3
    assert value(after, "tokenmux_cancel_latency_seconds_count") == 1
    assert value(after, "tokenmux_output_tokens_total", provider="sim") > 0
    assert value(after, "tokenmux_open_connections", transport="ws") <= 1  # closing
    assert value(after, "tokenmux_chunks_merged_total") == 0


async def test_sse_events_are_counted(server: RunningServer) -> None:
    body = {"prompt": "go", "llm_params": {"max_tokens": 2}}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/api/stream", json=body) as response,
    ):
        text = await response.text()
    assert text.endswith("data: [DONE]\n\n")
    samples = await scrape(server.url)
    assert value(samples, "tokenmux_events_sent_total", transport="sse", type="content_chunk") == 3
    assert value(samples, "tokenmux_events_sent_total", transport="sse", type="stream_end") == 1
    assert value(samples, "tokenmux_open_connections", transport="sse") == 0


async def test_retry_and_fallback_hooks_reach_the_registry() -> None:
    """What session code records on its tally is counted when the session ends."""
    provider = SimProvider("sim", ProviderConfig(type="sim", params={"tokens_per_second": 0}))
    start = Start(session="s1", messages=(Message("user", "hi"),), params={"max_tokens": 2})
    session = Session(start, provider, CollectingSink())
    tally: SessionTally = session.tally
    record_provider_error(tally, provider="openai", code="provider_timeout")
    record_retry(tally, provider="openai")
    record_fallback(tally, from_provider="openai", to_provider="sim")
    session.open()
    await session.run()
    metrics = AppMetrics(Tallies())
    metrics.session_ended(session)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in metrics.registry.collect()
        for s in family.samples
    }
    assert value(samples, "tokenmux_provider_retries_total", provider="openai") == 1
    assert (
        value(
            samples, "tokenmux_provider_fallbacks_total", from_provider="openai", to_provider="sim"
        )
        == 1
    )
    assert (
        value(samples, "tokenmux_provider_errors_total", provider="openai", code="provider_timeout")
        == 1
    )
    assert value(samples, "tokenmux_sessions_ended_total", provider="sim", reason="complete") == 1


async def test_retries_and_fallbacks_of_a_real_session_are_counted(
    start: Starter, make_config: ConfigFactory
) -> None:
    """A provider that fails twice, then hands over to a fallback that fails too."""
    flaky = {"type": "sim", "max_attempts": 2, "backoff_base_s": 0.001, "fallbacks": ["spare"]}
    providers = {"default": "flaky", "flaky": flaky, "spare": {"type": "sim"}}
    server = await start(make_config(providers=providers))
    client = await WsClient.connect(server.url)
    await client.start("s", params={"fail_at": 0})
    await client.until_ended({"s"})
    await client.close()
    assert check_session(client.events["s"])["reason"] == "error"
    samples = await scrape(server.url)
    assert value(samples, "tokenmux_provider_retries_total", provider="flaky") == 1
    fallback = {"from_provider": "flaky", "to_provider": "spare"}
    assert value(samples, "tokenmux_provider_fallbacks_total", **fallback) == 1
    errors = value(
        samples, "tokenmux_provider_errors_total", provider="flaky", code="provider_error"
    )
    assert errors == 2
    last = value(samples, "tokenmux_provider_errors_total", provider="spare", code="provider_error")
    assert last == 1  # the failure that ended the session is the fallback's


async def test_tokens_by_kind_and_tool_calls_are_counted(server: RunningServer) -> None:
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    client = await WsClient.connect(server.url)
    await client.start("call", tools=[weather], params={"reasoning_tokens": 5})
    await client.start("text", params={"max_tokens": 2})
    await client.until_ended({"call", "text"})
    await client.close()
    call, text = (check_session(client.events[s]) for s in ("call", "text"))
    samples = await scrape(server.url)
    assert value(samples, "tokenmux_tool_calls_total", provider="sim") == 1
    assert value(samples, "tokenmux_tokens_total", provider="sim", kind="reasoning") == 5
    output = call["usage"]["output_tokens"] + text["usage"]["output_tokens"]
    assert value(samples, "tokenmux_tokens_total", provider="sim", kind="output") == output
    inputs = call["usage"]["input_tokens"] + text["usage"]["input_tokens"]
    assert value(samples, "tokenmux_tokens_total", provider="sim", kind="input") == inputs
    assert value(samples, "tokenmux_events_sent_total", transport="ws", type="reasoning_chunk") == 5
