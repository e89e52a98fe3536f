"""Several tokenmux processes sharing one Redis: resume and cancel on any node, a lost
node, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from server.sessions.store.redis import connect
from tests._client import WsClient, check_session
from tests._process import OutputLog
from tests._sse import open_detached_sse, parse_eventsource
from tests.cluster.conftest import HEARTBEAT_S, Node, RedisServer
from tests.compat.test_ui_chat_functional import chat_body, ui_parts
from tests.providers.conftest import entry
from tests.providers.upstream import Reply, Upstream, start_upstream

Cluster = Callable[..., Any]
REDIS_CLI = os.environ.get("REDIS_CLI") or shutil.which("redis-cli") or "redis-cli"

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


async def relay_through(nodes: list[Node], sid: str, cuts: list[int]) -> list[dict[str, Any]]:
    """Start on ``nodes[0]``; after each cut lose the socket and resume on the next node."""
    client, token = await start_detached(nodes[0], sid, params=PARAMS)
    seen: list[dict[str, Any]] = []
    for cut, node in zip(cuts, nodes[1:], strict=True):
        await client.receive_until(lambda e, cut=cut: e.get("session") == sid and e["seq"] >= cut)
        client.ws.transport.abort()
        seen += client.events[sid]
        client = await WsClient.connect(node.url)
        await client.receive()
        await resume(client, sid, token, seen[-1]["seq"])
    async with asyncio.timeout(10):
        await client.receive_until(lambda e: e.get("session") == sid or e["type"] == "error")
        assert client.events[sid], client.connection_events  # resumed, not refused
        await client.until_ended({sid})
    await client.close()
    return seen + client.events[sid]


async def test_resume_across_three_nodes_at_random_cut_points(cluster: Cluster) -> None:
    """A to B to C, each hop at a random seq: complete text, no gap, no duplicate."""
    a, b, c = await cluster(), await cluster(), await cluster()
    rng = random.Random()
    hops = []
    for i in range(8):
        first = rng.randrange(0, 40)
        hops.append((f"hop{i}", [first, rng.randrange(first + 1, 60)]))
    lives = await asyncio.gather(*(relay_through([a, b, c], sid, cuts) for sid, cuts in hops))
    reference = await WsClient.connect(c.url)
    await reference.receive()
    for sid, _ in hops:
        await reference.start(sid, f"prompt {sid}", params=PARAMS)
    await reference.until_ended({sid for sid, _ in hops})
    for (sid, cuts), events in zip(hops, lives, strict=True):
        end = check_session(events)
        assert end["reason"] == "complete", cuts
        assert end["text"] == check_session(reference.events[sid])["text"], cuts
    await reference.close()


async def test_no_resume_token_reaches_redis_or_any_log_line(
    cluster: Cluster, redis: RedisServer
) -> None:
    """MONITOR sees every command while a WS and an SSE session and a chat answer are
    resumed across nodes with every node at DEBUG: no token in any command, stored value or
    printed line; the chat id is indexed to the token's hash."""
    monitor = await asyncio.create_subprocess_exec(
        REDIS_CLI, "-p", str(redis.port), "monitor",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert monitor.stdout is not None
    commands = OutputLog(monitor.stdout)
    try:
        await commands.wait_for("^OK")
        debug = {"server": {"log_level": "DEBUG"}}
        a, b = await cluster(**debug), await cluster(**debug)
        events = await cut_and_resume_elsewhere(a, b, "ws", 3)
        ws_token = events[0]["data"]["resume_token"]
        again = await WsClient.connect(b.url)  # from the very start: stream_start again
        await again.receive()
        await resume(again, "ws", ws_token, -1)
        replayed = await again.receive_until(lambda e: e.get("session") == "ws")
        assert replayed["data"]["resume_token"] == ws_token  # given back, not stored
        await again.close()
        async with aiohttp.ClientSession() as http:
            first, sse_token = await open_detached_sse(http, a.url, "sse")
            url = f"{b.url}/api/sessions/sse/events?resume_token={sse_token}"
            async with http.get(url, headers={"Last-Event-ID": "3"}) as resumed:
                rest = parse_eventsource(await resumed.read())
            assert check_session(first + rest)["reason"] == "complete"
            chat = {"on_disconnect": "detach", "params": PARAMS}
            async with http.post(a.url + "/api/chat", json=chat_body("chat-m", **chat)) as start:
                await start.content.readuntil(b'"text-delta"')
                start.close()
            async with http.get(b.url + "/api/chat/chat-m/stream") as chat_resumed:
                assert ui_parts(await chat_resumed.read())[-1]["type"] == "finish"
        stored = await everything_stored(redis)
        await commands.wait_for("XRANGE")
    finally:
        monitor.terminate()
        await monitor.wait()
        await commands.aclose()
    sent = "\n".join(commands.lines)
    assert "XADD" in sent and "stream_start" in sent  # MONITOR did see the logs written
    printed = "\n".join(line for node in (a, b) for line in node.output.lines)
    assert " DEBUG " in printed
    for token in (ws_token, sse_token):
        assert token not in sent and token not in stored and token not in printed
    assert "resume_token" not in sent and "resume_token" not in stored
    index = re.search(r"b'tokenmux:chat:chat-m' \{b'key': b'([0-9a-f]{64})', b'message'", stored)
    assert index is not None and f"b'tokenmux:s:{index[1]}'" in stored, stored


async def everything_stored(redis: RedisServer) -> str:
    """Every key and value in Redis, as text."""
    client = connect(redis.url)
    try:
        dump = []
        for key in await client.keys("*"):
            kind = (await client.type(key)).decode()
            if kind == "hash":
                value: Any = await client.hgetall(key)
            elif kind == "stream":
                value = await client.xrange(key)
            else:
                value = await client.get(key) if kind == "string" else kind
            dump.append(f"{key!r} {value!r}")
        return "\n".join(dump)
    finally:
        await client.aclose()


async def test_a_resume_on_another_node_right_after_stream_start_is_accepted(
    cluster: Cluster,
) -> None:
    """The client drops A as soon as stream_start arrives and resumes on a socket to B it
    already holds: the token is valid there at once, never `unauthorized`."""
    a, b = await cluster(), await cluster()
    other = await WsClient.connect(b.url)
    await other.receive()
    sids = {f"quick{i}" for i in range(12)}
    for sid in sorted(sids):
        first, token = await start_detached(a, sid, params=PARAMS)
        first.ws.transport.abort()
        await resume(other, sid, token, 0)
    async with asyncio.timeout(15):
        while not all(any(e["type"] == "stream_end" for e in other.events[s]) for s in sids):
            await other.receive()
            refusals = [e for e in other.connection_events if e["type"] == "error"]
            assert not refusals, refusals
    for sid in sids:
        assert other.events[sid][-1]["data"]["reason"] == "complete"
    await other.close()


async def test_a_relay_that_loses_its_client_leaves_the_owner_alone(cluster: Cluster) -> None:
    """Resume on B, drop B's socket 0-10 ms later, resume on A: the session streams to its
    end on A every time (B's attach and release come late and change nothing)."""
    a, b = await cluster(), await cluster()
    slow = {"max_tokens": 60, "tokens_per_second": 100}
    rng = random.Random()
    for i in range(6):
        sid = f"back{i}"
        first, token = await start_detached(a, sid, params=slow)
        first.ws.transport.abort()
        relay = await WsClient.connect(b.url)
        await relay.receive()
        await resume(relay, sid, token, 0)
        await asyncio.sleep(rng.uniform(0, 0.01))
        relay.ws.transport.abort()
        owner = await WsClient.connect(a.url)
        await owner.receive()
        await resume(owner, sid, token, 0)
        async with asyncio.timeout(10):
            await owner.until_ended({sid})
        assert check_session(first.events[sid][:1] + owner.events[sid])["reason"] == "complete"
        await owner.close()


async def test_a_takeover_on_a_third_node_silences_the_old_relay(cluster: Cluster) -> None:
    """A's session relayed by B to an open socket is resumed on C: B's socket receives
    nothing more of it, and B's late release does not expire it under C (grace_s: 2)."""
    a = await cluster(resume={"grace_s": 2})
    b, c = await cluster(), await cluster()
    first, token = await start_detached(a, "t", params={"max_tokens": 200, "tokens_per_second": 60})
    first.ws.transport.abort()
    old = await WsClient.connect(b.url)
    await old.receive()
    await resume(old, "t", token, 0)
    await old.receive_until(lambda e: e.get("session") == "t" and e["seq"] >= 3)
    new = await WsClient.connect(c.url)
    await new.receive()
    await resume(new, "t", token, 0)
    await new.receive_until(lambda e: e.get("session") == "t")
    await a.output.wait_for(r"session t resumed on another node")
    await asyncio.sleep(0.5)
    # Whatever B relayed before C's takeover has arrived: a pong queued after it says so.
    await old.send({"type": "ping", "data": {"n": 1}})
    await old.receive_until(lambda e: e["type"] == "pong")
    relayed = len(old.events["t"])
    await old.close()  # B's client leaves 0.5 s after the takeover: a late release
    async with asyncio.timeout(15):
        await new.until_ended({"t"})
    assert check_session(first.events["t"][:1] + new.events["t"])["reason"] == "complete"
    assert relayed < len(new.events["t"])  # B stopped well before the end
    assert all(e["type"] != "stream_end" for e in old.events["t"])
    await new.close()


async def open_long_sse(http: aiohttp.ClientSession, node: Node, sid: str) -> tuple[Any, str]:
    """A detachable SSE session on ``node`` that runs for long; its reader is cut after
    four events. Returns the token."""
    body = {
        "prompt": "x",
        "session_id": sid,
        "on_disconnect": "detach",
        "llm_params": {"max_tokens": 2000, "tokens_per_second": 100},
    }
    response = await http.post(node.url + "/api/stream", json=body)
    head = [await response.content.readuntil(b"\n\n") for _ in range(4)]
    response.close()
    return head, json.loads(head[0][6:])["data"]["resume_token"]


@pytest.mark.parametrize("where", ["third node", "owner"])
async def test_http_cancel_reaches_a_detached_sse_session_read_on_another_node(
    cluster: Cluster, where: str
) -> None:
    """SSE on A, detached; its reader resumes as EventSource on C; POST cancel on B (or on
    A itself) answers 202 and C gets stream_end{cancelled}."""
    a, b, c = await cluster(), await cluster(), await cluster()
    async with aiohttp.ClientSession() as http:
        _, token = await open_long_sse(http, a, "h")
        url = f"{c.url}/api/sessions/h/events?resume_token={token}"
        async with http.get(url, headers={"Last-Event-ID": "3"}) as reading:
            await reading.content.readuntil(b"\n\n")  # C relays
            canceller = b if where == "third node" else a
            async with http.post(f"{canceller.url}/api/sessions/h/cancel") as answer:
                assert answer.status == 202, await answer.text()
                assert (await answer.json())["status"] == "cancelling"
            async with asyncio.timeout(5):
                rest = await reading.read()
    events = parse_eventsource(rest)
    assert events[-1]["type"] == "stream_end" and events[-1]["data"]["reason"] == "cancelled"
    await a.output.wait_for(r"session_end session=h .*reason=cancelled")


async def test_http_cancel_on_a_node_whose_relay_lost_its_reader_reaches_the_owner(
    cluster: Cluster,
) -> None:
    """SSE on A, detached; read as EventSource on B until that reader leaves; POST cancel on
    B answers 202 and A cancels: a relay that stopped early says nothing of the session."""
    a, b = await cluster(), await cluster()
    async with aiohttp.ClientSession() as http:
        _, token = await open_long_sse(http, a, "h")
        url = f"{b.url}/api/sessions/h/events?resume_token={token}"
        async with http.get(url, headers={"Last-Event-ID": "3"}) as reading:
            await reading.content.readuntil(b"\n\n")  # B relays
            reading.close()
        await b.output.wait_for(r"session h relayed from node \w+: stopped before the end")
        async with http.post(f"{b.url}/api/sessions/h/cancel") as answer:
            assert answer.status == 202, await answer.text()
            assert (await answer.json())["status"] == "cancelling"
    await a.output.wait_for(r"session_end session=h .*reason=cancelled")


async def test_a_redis_freeze_then_thaw_never_leaves_a_resume_hanging(
    cluster: Cluster, redis: RedisServer
) -> None:
    """Redis stops answering (SIGSTOP) for longer than op_timeout_s while a detached session
    runs on A: its log is dropped. After the thaw a resume on B ends or is refused, never
    hangs, never skips an event; and A deletes the dropped log's keys."""
    a, b = await cluster(), await cluster()
    first, token = await start_detached(a, "f", params={"max_tokens": 120, "tokens_per_second": 40})
    await first.receive_until(lambda e: e.get("session") == "f" and e["seq"] >= 3)
    await logged(redis, 3)
    first.ws.transport.abort()
    seen = first.events["f"][-1]["seq"]
    redis.freeze(True)
    try:
        await a.wait_health(lambda h: h["store"]["logs_dropped"] >= 1, within=10)
        await asyncio.sleep(2)  # long enough for A's first attempt at the deletion to fail
    finally:
        redis.freeze(False)
    await a.wait_health(lambda h: h["store"]["healthy"] is True, within=5)
    await a.output.wait_for(r"session store: redis is back")
    await asyncio.sleep(3 * HEARTBEAT_S)  # A beats again: B sees its owner alive
    second = await WsClient.connect(b.url)
    await second.receive()
    await resume(second, "f", token, seen)
    async with asyncio.timeout(10):
        event = await second.receive_until(
            lambda e: (e["type"] == "error" and "session" not in e) or e["type"] == "stream_end"
        )
    if event["type"] == "error":
        assert event["data"]["code"] == "unauthorized"  # the log is gone: refused
    else:
        events = second.events["f"]
        assert [e["seq"] for e in events] == list(range(seen + 1, seen + 1 + len(events)))
        assert event["data"]["reason"] in ("complete", "error")
    client = connect(redis.url)
    try:
        async with asyncio.timeout(5):
            while await client.keys("tokenmux:s:*") or await client.keys("tokenmux:log:*"):  # noqa: ASYNC110 - state in Redis
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    await second.close()
