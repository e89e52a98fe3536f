"""The content cache in a real server: a hit streams the same text without touching the
upstream; cancelled or failed streams are not stored; paced replay keeps the timing;
/metrics counts; Redis shares the cache between two servers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from server.app import RunningServer
from tests._client import WsClient, check_session
from tests.cluster.conftest import REDIS_SERVER, RedisServer
from tests.conftest import ConfigFactory, Starter
from tests.providers.conftest import entry
from tests.providers.upstream import Reply, Upstream, start_upstream

MODEL = "cached-model"
CACHED = {"params": {"cache": True, "max_tokens": 20}}


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server, runner = await start_upstream()
    yield server
    await runner.cleanup()


def cache_config(make_config: ConfigFactory, upstream: Upstream, **cache: Any) -> Any:
    return make_config(
        providers={"default": "llm", "llm": entry("openai", upstream, MODEL)},
        cache={"type": "memory", **cache},
    )


async def run(client: WsClient, sid: str, **data: Any) -> list[dict[str, Any]]:
    await client.start(sid, "Tell me", **(CACHED | data))
    await client.until_ended({sid})
    return client.events[sid]


def metadata(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "metadata"]


async def test_a_hit_streams_the_same_text_without_the_upstream(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    server = await start(cache_config(make_config, upstream))
    upstream.plan(MODEL, Reply(text="A cached answer, in pieces.", chunks=5))
    client = await WsClient.connect(server.url)
    first, second = await run(client, "a"), await run(client, "b")
    other = await run(client, "c", params={"cache": True, "max_tokens": 21})
    await client.close()
    assert len(upstream.requests(MODEL)) == 2  # a and c; b was a hit
    assert "cache" not in upstream.requests(MODEL)[0].body  # not a provider parameter
    end_a, end_b = check_session(first), check_session(second)
    assert end_a["text"] == end_b["text"] == "A cached answer, in pieces."
    assert [e["data"]["content"] for e in first if e["type"] == "content_chunk"] == [
        e["data"]["content"] for e in second if e["type"] == "content_chunk"
    ]
    assert metadata(first)[0] == {"cache": "miss"} and metadata(second)[0] == {"cache": "hit"}
    assert metadata(other)[0] == {"cache": "miss"}
    final_a, final_b = metadata(first)[-1], metadata(second)[-1]
    assert final_a["usage"] == {"input_tokens": 11, "output_tokens": 7}
    assert final_b["usage"] == {"input_tokens": 11, "output_tokens": 7, "cached_input_tokens": 11}
    assert end_b["usage"]["output_tokens"] == 7 and not end_b["usage"]["estimated"]
    page = await scrape(server)
    assert (page["tokenmux_cache_hits_total"], page["tokenmux_cache_misses_total"]) == (1, 2)
    assert page["tokenmux_cache_entries"] == 2 and page["tokenmux_cache_bytes"] > 100


async def test_cancelled_and_failed_streams_are_not_stored(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    server = await start(cache_config(make_config, upstream))
    slow = Reply(text="word " * 20, chunks=20, chunk_delay_s=0.05)
    upstream.plan(MODEL, slow, Reply(text="Half of it", chunks=2, error_after=1), Reply())
    client = await WsClient.connect(server.url)
    await client.start("cancelled", "Tell me", **CACHED)
    await client.receive_until(lambda e: e["type"] == "content_chunk")
    await client.cancel("cancelled")
    await client.until_ended({"cancelled"})
    assert check_session(client.events["cancelled"])["reason"] == "cancelled"
    failed = await run(client, "failed")
    assert check_session(failed)["reason"] == "error"
    third = await run(client, "third")  # neither was stored: the upstream answers again
    await client.close()
    assert metadata(third)[0] == {"cache": "miss"}
    assert check_session(third)["text"] == "Hello from the upstream."
    assert len(upstream.requests(MODEL)) == 3
    assert (await scrape(server))["tokenmux_cache_entries"] == 1


async def test_paced_replay_keeps_the_original_timing(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    server = await start(cache_config(make_config, upstream, replay="paced"))
    upstream.plan(MODEL, Reply(text="one two three four", chunks=4, chunk_delay_s=0.1))
    client = await WsClient.connect(server.url)
    await run(client, "original")
    replayed = await run(client, "replay")
    await client.close()
    chunks = [e["timestamp"] for e in replayed if e["type"] == "content_chunk"]
    assert len(chunks) == 4 and chunks[-1] - chunks[0] >= 250, chunks  # ~300 ms originally
    assert len(upstream.requests(MODEL)) == 1


async def test_the_provider_entry_can_cache_every_request(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    config = make_config(
        providers={"default": "llm", "llm": entry("openai", upstream, MODEL, cache=True)},
        cache={"type": "memory"},
    )
    server = await start(config)
    client = await WsClient.connect(server.url)
    for sid, params in (("a", {}), ("b", {}), ("c", {"cache": False})):
        await client.start(sid, "Same", params=params)  # one after the other: no coalescing
        await client.until_ended({sid})
    await client.close()
    assert metadata(client.events["b"])[0] == {"cache": "hit"}
    assert "cache" not in metadata(client.events["c"])[0]
    assert len(upstream.requests(MODEL)) == 2


async def test_without_a_cache_asking_for_it_is_an_invalid_field(server: RunningServer) -> None:
    client = await WsClient.connect(server.url)
    events = await run(client, "s1")
    await client.close()
    error = next(e["data"] for e in events if e["type"] == "error")
    assert error["code"] == "invalid_field" and "params.cache" in error["message"]


async def scrape(server: RunningServer) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
        text = await response.text()
    found = re.findall(r"^(tokenmux_cache_\w+) (\S+)$", text, flags=re.M)
    return {name: float(value) for name, value in found}


async def test_redis_shares_the_cache_between_servers(
    start: Starter, make_config: ConfigFactory, upstream: Upstream
) -> None:
    if not REDIS_SERVER:
        pytest.fail("redis-server is missing: `make test` installs it")
    redis = RedisServer()
    await redis.start()
    try:
        config = cache_config(make_config, upstream, type="redis", url=redis.url)
        one, two = await start(config), await start(config)
        upstream.plan(MODEL, Reply(text="Shared between nodes.", chunks=3))
        client = await WsClient.connect(one.url)
        first = await run(client, "a")
        await client.close()
        await asyncio.sleep(0)  # the store's write task
        for _ in range(100):
            if (await scrape(one)).get("tokenmux_cache_stores_total"):
                break
            await asyncio.sleep(0.01)
        client = await WsClient.connect(two.url)
        second = await run(client, "b")
        await client.close()
        assert metadata(second)[0] == {"cache": "hit"}
        assert check_session(first)["text"] == check_session(second)["text"]
        assert len(upstream.requests(MODEL)) == 1
        assert (await scrape(two))["tokenmux_cache_hits_total"] == 1
        await one.aclose()
        await two.aclose()
    finally:
        await redis.stop()
