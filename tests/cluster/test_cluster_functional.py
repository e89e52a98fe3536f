"""Several tokenmux processes sharing one Redis: resume and cancel on any node, a lost
node, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from server.sessions.store.redis import connect
from tests._client import WsClient, check_session
from tests._sse import open_detached_sse, parse_eventsource
from tests.cluster.conftest import HEARTBEAT_S, Node, RedisServer
from tests.providers.conftest import entry
from tests.providers.upstream import Reply, Upstream, start_upstream

Cluster = Callable[..., Any]

PARAMS = {"max_tokens": 60, "tokens_per_second": 300}


async def start_detached(node: Node, sid: str, **data: Any) -> tuple[WsClient, str]:
    """A client on ``node`` with a detachable session ``sid``; returns it and the token."""
    client = await WsClient.connect(node.url)
    await client.receive()  # ready
    await client.start(sid, f"prompt {sid}", on_disconnect="detach", **data)
    start = await client.receive_until(lambda e: e.get("session") == sid)
    return client, start["data"]["resume_token"]


async def resume(client: WsClient, sid: str, token: str, after_seq: int) -> None:
    message = {"resume_token": token, "after_seq": after_seq}
    await client.send({"type": "resume", "session": sid, "data": message})


async def cut_and_resume_elsewhere(a: Node, b: Node, sid: str, cut: int) -> list[dict[str, Any]]:
    """Start on ``a``, lose the socket after seq ``cut``, resume on ``b``."""
    first, token = await start_detached(a, sid, params=PARAMS)
    await first.receive_until(lambda e: e.get("session") == sid and e["seq"] >= cut)
    first.ws.transport.abort()  # no close handshake: node A just loses the socket
    seen = first.events[sid][: cut + 1]
    second = await WsClient.connect(b.url)
    await second.receive()
    await resume(second, sid, token, cut)
    async with asyncio.timeout(10):
        await second.receive_until(lambda e: e.get("session") == sid or e["type"] == "error")
        assert second.events[sid], second.connection_events  # resumed, not refused
        await second.until_ended({sid})
    await second.close()
    return seen + second.events[sid]


async def test_resume_on_another_node_at_random_cut_points(cluster: Cluster) -> None:
    """Complete text, no gap, no duplicate, while A is still generating or after it ended."""
    a, b = await cluster(), await cluster()
    cuts = sorted(random.Random(7).sample(range(0, 64), 16))
    lives = await asyncio.gather(*(cut_and_resume_elsewhere(a, b, f"cut{c}", c) for c in cuts))
    reference = await WsClient.connect(b.url)
    await reference.receive()
    for cut in cuts:
        await reference.start(f"cut{cut}", f"prompt cut{cut}", params=PARAMS)
    await reference.until_ended({f"cut{c}" for c in cuts})
    for cut, events in zip(cuts, lives, strict=True):
        end = check_session(events)  # contiguous seq from 0, one stream_end
        assert end["reason"] == "complete", cut
        assert end["text"] == check_session(reference.events[f"cut{cut}"])["text"], cut
    await reference.close()


async def test_resume_of_a_session_still_generating_follows_it_live(cluster: Cluster) -> None:
    """B relays A's events as they are produced, then A's ending."""
    a, b = await cluster(), await cluster()
    slow = {"max_tokens": 30, "tokens_per_second": 60}
    first, token = await start_detached(a, "live", params=slow)
    await first.receive_until(lambda e: e["type"] == "content_chunk")
    await first.close()
    second = await WsClient.connect(b.url)
    await second.receive()
    await resume(second, "live", token, 0)
    chunk = await second.receive_until(lambda e: e["type"] == "content_chunk")
    assert chunk["seq"] == 1  # replayed from the log
    await a.output.wait_for(r"session live resumed on another node")
    await second.until_ended({"live"})
    events = first.events["live"][:1] + second.events["live"]
    assert check_session(events)["reason"] == "complete"
    await second.close()


async def test_a_wrong_token_on_another_node_is_unauthorized(cluster: Cluster) -> None:
    a, b = await cluster(), await cluster()
    first, token = await start_detached(a, "s", params={"hang_at": 1})
    other = await WsClient.connect(b.url)
    await other.receive()
    for session, attempt in (("s", token[:-1] + "x"), ("t", token)):
        await resume(other, session, attempt, 0)
        error = await other.connection_event()
        assert error["data"]["code"] == "unauthorized"
        assert error["data"]["ref"] == {"type": "resume", "session": session}
    async with aiohttp.ClientSession() as http:
        url = f"{b.url}/api/sessions/s/events?resume_token=nope"
        async with http.get(url) as response:
            assert response.status == 401
    await other.close()
    await first.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server, runner = await start_upstream()
    yield server
    await runner.cleanup()


async def test_cancel_on_another_node_stops_the_upstream_within_a_second(
    cluster: Cluster, upstream: Upstream
) -> None:
    """WS cancel on B reaches A, A aborts its upstream request, B's client gets the ack."""
    upstream.plan("m", Reply(chunks=2, hang_after=1))
    providers = {"default": "p", "p": entry("openai", upstream, "m")}
    a = await cluster(providers=providers)
    b = await cluster(providers=providers)
    first, token = await start_detached(a, "c", provider="p")
    await first.receive_until(lambda e: e["type"] == "content_chunk")
    record = await upstream.wait_for_request("m")
    await first.close()
    second = await WsClient.connect(b.url)
    await second.receive()
    await resume(second, "c", token, 0)
    await second.receive_until(lambda e: e["type"] == "content_chunk")
    loop = asyncio.get_running_loop()
    cancelled_at = loop.time()
    await second.cancel("c")
    await asyncio.wait_for(record.disconnected.wait(), 1.0)
    assert record.disconnected_at is not None
    assert record.disconnected_at - cancelled_at < 1.0
    await asyncio.wait_for(second.until_ended({"c"}), 1.0)
    events = first.events["c"][:1] + second.events["c"]
    assert check_session(events)["reason"] == "cancelled"
    await a.output.wait_for(r"session_end session=c .*reason=cancelled")
    await second.close()


async def test_http_cancel_on_another_node_reaches_the_sse_session(
    cluster: Cluster, upstream: Upstream
) -> None:
    upstream.plan("m", Reply(chunks=2, hang_after=1))
    providers = {"default": "p", "p": entry("openai", upstream, "m")}
    a = await cluster(providers=providers)
    b = await cluster(providers=providers)
    async with aiohttp.ClientSession() as http:
        body = {"prompt": "Hello", "session_id": "h1"}
        response = await http.post(a.url + "/api/stream", json=body)
        async for line in response.content:
            if b'"content_chunk"' in line:
                break
        record = await upstream.wait_for_request("m")
        async with http.post(b.url + "/api/sessions/h1/cancel") as answer:
            assert answer.status == 202
            assert (await answer.json())["status"] == "cancelling"
        await asyncio.wait_for(record.disconnected.wait(), 1.0)
        rest = await response.read()
        assert b'"reason":"cancelled"' in rest and rest.endswith(b"data: [DONE]\n\n")
        response.release()
        await a.output.wait_for(r"session_end session=h1 .*reason=cancelled")
        async with asyncio.timeout(5):
            while True:  # the end reaches Redis a flush after the log line
                async with http.post(b.url + "/api/sessions/h1/cancel") as answer:
                    if answer.status == 200:
                        assert (await answer.json())["status"] == "ended"
                        break
                    assert answer.status == 202
        async with http.post(b.url + "/api/sessions/nope/cancel") as answer:
            assert answer.status == 404


async def logged(redis: RedisServer, seq: int) -> None:
    """Wait until some session's log holds event ``seq`` (polling Redis itself)."""
    client = connect(redis.url)
    try:
        async with asyncio.timeout(5):
            while True:
                keys = await client.keys("tokenmux:log:*")
                entries = [e for key in keys for e in await client.xrange(key)]
                if any(ev["seq"] >= seq for _, e in entries for ev in json.loads(e[b"e"])):
                    return
                await asyncio.sleep(0.02)
    finally:
        await client.aclose()


async def test_a_killed_node_is_reported_as_node_lost(cluster: Cluster, redis: RedisServer) -> None:
    """kill -9 of the owner: a resume elsewhere gets node_lost, then stream_end{error}."""
    a, b = await cluster(), await cluster()
    first, token = await start_detached(a, "k", params={"hang_at": 3})
    await first.receive_until(lambda e: e["type"] == "content_chunk" and e["seq"] == 3)
    await logged(redis, 3)  # what A sent before dying is in the log (it flushes at once)
    a.kill()
    await a.process.wait()
    await first.close()
    second = await WsClient.connect(b.url)
    await second.receive()
    await resume(second, "k", token, 1)
    async with asyncio.timeout(10 * HEARTBEAT_S + 2):
        await second.until_ended({"k"})
    events = first.events["k"][:2] + second.events["k"]
    end = check_session(events)
    assert end["reason"] == "error"
    error = events[-2]["data"]
    assert error["code"] == "node_lost" and error["retryable"] is True
    assert [e["seq"] for e in second.events["k"]][:2] == [2, 3]  # the logged rest first
    await second.close()


async def stream_text(node: Node, prompt: str) -> bytes:
    async with aiohttp.ClientSession() as http:
        body = {"prompt": prompt, "llm_params": {"max_tokens": 5}}
        async with http.post(node.url + "/api/stream", json=body) as response:
            assert response.status == 200
            return await response.read()


async def test_without_redis_sessions_stream_and_resume_comes_back(
    cluster: Cluster, redis: RedisServer
) -> None:
    a, b = await cluster(), await cluster()
    streaming, _ = await start_detached(
        a, "during", params={"max_tokens": 40, "tokens_per_second": 80}
    )
    await streaming.receive_until(lambda e: e["type"] == "content_chunk")
    await redis.stop()  # mid-run: this session goes on streaming to its client
    await streaming.until_ended({"during"})
    assert check_session(streaming.events["during"])["reason"] == "complete"
    await streaming.close()
    raw = await stream_text(a, "no redis")
    assert b'"reason":"complete"' in raw and raw.endswith(b"data: [DONE]\n\n")
    await a.wait_health(lambda h: h["store"]["healthy"] is False, within=5)
    await a.output.wait_for(r"session store: redis unavailable")
    # A session started now streams, and resumes on its own node, but not on another.
    first, token = await start_detached(a, "local", params={"max_tokens": 5})
    await first.until_ended({"local"})
    assert check_session(first.events["local"])["reason"] == "complete"
    again = await WsClient.connect(a.url)
    await again.receive()
    await resume(again, "local", token, 2)
    await again.until_ended({"local"})
    assert check_session(first.events["local"][:3] + again.events["local"])
    await again.close()
    health = await a.health()
    assert health["status"] == "ok" and health["store"]["sessions_unshared"] >= 1
    metrics = await scrape_metrics(a.url)
    assert "tokenmux_store_healthy 0.0" in metrics
    assert re.search(r"^tokenmux_store_sessions_unshared_total [1-9]", metrics, re.M)
    await redis.start()
    await a.wait_health(lambda h: h["store"]["healthy"] is True, within=5)
    await b.wait_health(lambda h: h["store"]["healthy"] is True, within=5)
    await a.output.wait_for(r"session store: redis is back")
    events = await cut_and_resume_elsewhere(a, b, "again", 5)
    assert check_session(events)["reason"] == "complete"
    await first.close()


async def scrape_metrics(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        assert response.status == 200
        return await response.text()


async def test_an_sse_session_resumes_as_eventsource_on_another_node(cluster: Cluster) -> None:
    a, b = await cluster(), await cluster()
    async with aiohttp.ClientSession() as http:
        first, token = await open_detached_sse(http, a.url, "es")  # seq 0-3 seen on A
        url = f"{b.url}/api/sessions/es/events?resume_token={token}"
        async with http.get(url, headers={"Last-Event-ID": "3"}) as resumed:
            assert resumed.headers["Content-Type"] == "text/event-stream"
            raw = await resumed.read()
    replay = parse_eventsource(raw)
    assert check_session(first + replay)["reason"] == "complete"


async def test_a_resume_on_another_node_takes_the_session_over(cluster: Cluster) -> None:
    """The old socket on A (often a dead one A has not noticed) receives nothing more."""
    a, b = await cluster(), await cluster()
    old, token = await start_detached(a, "t", params={"max_tokens": 40, "tokens_per_second": 80})
    await old.receive_until(lambda e: e["type"] == "content_chunk")
    new = await WsClient.connect(b.url)
    await new.receive()
    await resume(new, "t", token, 0)
    await new.until_ended({"t"})
    assert check_session(old.events["t"][:1] + new.events["t"])["reason"] == "complete"
    # A wrote stream_end to its log, and to its client's queue if that were still attached;
    # a pong queued after it on A's socket proves that it was not.
    await old.send({"type": "ping", "data": {"n": 1}})
    await old.receive_until(lambda e: e["type"] == "pong")
    assert all(e["type"] != "stream_end" for e in old.events["t"])
    await old.close()
    await new.close()


async def test_a_trimmed_log_resumes_with_recovered_false(cluster: Cluster) -> None:
    """The Stream is capped near resume.buffer_events; what it lost comes as content_so_far."""
    a = await cluster(resume={"buffer_events": 8})
    b = await cluster(resume={"buffer_events": 8})
    params = {"max_tokens": 250, "tokens_per_second": 500}  # one batch per chunk, mostly
    first, token = await start_detached(a, "long", params=params)
    await first.receive_until(lambda e: e.get("session") == "long" and e["seq"] == 2)
    await first.until_ended({"long"})
    second = await WsClient.connect(b.url)
    await second.receive()
    await resume(second, "long", token, 2)
    await second.until_ended({"long"})
    events = second.events["long"]
    recovery = events[0]
    assert recovery["type"] == "metadata" and recovery["data"]["recovered"] is False
    assert [e["seq"] for e in events] == list(range(recovery["seq"], recovery["seq"] + len(events)))
    assert recovery["seq"] > 3  # the log no longer held seq 3
    rest = "".join(e["data"]["content"] for e in events if e["type"] == "content_chunk")
    total = events[-2]["data"]["total_content"]
    assert recovery["data"]["content_so_far"] + rest == total
    assert total == check_session(first.events["long"])["text"]
    await second.close()
    await first.close()


async def test_chat_cancel_on_another_node_stops_the_answer(
    cluster: Cluster, upstream: Upstream
) -> None:
    """POST /api/chat/{id}/cancel on B stops the /api/chat answer running on A."""
    upstream.plan("m", Reply(chunks=2, hang_after=1))
    providers = {"default": "p", "p": entry("openai", upstream, "m")}
    a = await cluster(providers=providers)
    b = await cluster(providers=providers)
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hello"}]}
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            a.url + "/api/chat", json={"id": "chat-x", "messages": [message]}
        )
        await response.content.readuntil(b'"text-delta"')
        record = await upstream.wait_for_request("m")
        async with http.post(b.url + "/api/chat/chat-x/cancel") as answer:
            assert answer.status == 202
        await asyncio.wait_for(record.disconnected.wait(), 1.0)
        rest = await response.read()
        assert b'{"type":"abort","reason":"cancelled"}' in rest
        assert rest.endswith(b"data: [DONE]\n\n")
        response.release()
