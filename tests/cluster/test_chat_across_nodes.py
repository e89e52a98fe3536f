"""POST /api/chat with ``on_disconnect: "detach"`` on one node, GET /api/chat/{id}/stream
on another: the answer is found by its chat id through the shared store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from server.sessions.store.redis import connect
from tests._wait import eventually
from tests.cluster.conftest import HEARTBEAT_S, Node, RedisServer
from tests.compat.test_ui_chat_functional import chat_body, ui_parts

Cluster = Callable[..., Any]

PARAMS = {"max_tokens": 60, "tokens_per_second": 200}


def text_of(parts: list[dict[str, Any]]) -> str:
    return "".join(p["delta"] for p in parts if p["type"] == "text-delta")


async def read_parts(response: aiohttp.ClientResponse, deltas: int) -> list[dict[str, Any]]:
    """The parts up to the ``deltas``-th text delta (a body read partway)."""
    head = b""
    for _ in range(deltas):
        head += await response.content.readuntil(b'"text-delta"')
    head += await response.content.readuntil(b"\n\n")
    return ui_parts(head + b"data: [DONE]\n\n")


async def start_and_drop(
    http: aiohttp.ClientSession, node: Node, chat_id: str, params: dict[str, Any], deltas: int
) -> list[dict[str, Any]]:
    """A detached answer on ``node``: read its first ``deltas`` text deltas, then drop it."""
    body = chat_body(chat_id, on_disconnect="detach", params=params)
    async with http.post(node.url + "/api/chat", json=body) as response:
        assert response.status == 200
        head = await read_parts(response, deltas)
        response.close()
    return head


async def until_nothing_runs(http: aiohttp.ClientSession, node: Node, chat_id: str) -> None:
    """Poll the stream route until it answers 204 (the end reaches Redis a flush after the
    last part); every earlier answer must be the whole finished answer."""
    async with asyncio.timeout(5):
        while True:
            async with http.get(f"{node.url}/api/chat/{chat_id}/stream") as response:
                if response.status == 204:
                    return
                assert response.status == 200
                assert ui_parts(await response.read())[0]["type"] == "start"


async def test_a_detached_answer_resumes_on_another_node_by_its_chat_id(cluster: Cluster) -> None:
    a, b = await cluster(), await cluster()
    async with aiohttp.ClientSession() as http:
        head = await start_and_drop(http, a, "chat-r", PARAMS, deltas=3)
        async with http.get(b.url + "/api/chat/chat-r/stream") as resumed:
            assert resumed.status == 200
            assert resumed.headers["x-vercel-ai-ui-message-stream"] == "v1"
            parts = ui_parts(await resumed.read())
        async with http.post(b.url + "/api/chat", json=chat_body("chat-ref", params=PARAMS)) as ref:
            reference = ui_parts(await ref.read())
        await until_nothing_runs(http, b, "chat-r")
        await until_nothing_runs(http, a, "chat-r")
    kinds = [p["type"] for p in parts]
    assert kinds[:3] == ["start", "start-step", "text-start"]
    assert kinds[-3:] == ["text-end", "finish-step", "finish"]
    assert kinds.count("start") == 1 and kinds.count("finish") == 1
    assert parts[0]["messageId"] == head[0]["messageId"]
    assert parts[0]["messageMetadata"]["sessionId"] == "chat-r"
    assert text_of(head) and text_of(parts).startswith(text_of(head))
    assert text_of(parts) == text_of(reference)  # nothing lost, nothing repeated


async def test_a_resumed_answer_follows_live_and_is_cancelled_from_the_resuming_node(
    cluster: Cluster,
) -> None:
    """A second GET on the resuming node takes the answer over from the first (which gets
    no more parts), and the cancel route there stops it on its node."""
    quick = {"sse": {"keepalive_s": 0.2}}  # a reader whose relay was taken over ends soon
    a, b = await cluster(**quick), await cluster(**quick)
    params = {"max_tokens": 60, "tokens_per_second": 200, "hang_at": 6}
    async with aiohttp.ClientSession() as http:
        head = await start_and_drop(http, a, "chat-h", params, deltas=2)
        async with http.get(b.url + "/api/chat/chat-h/stream") as first:
            assert first.status == 200
            await read_parts(first, 1)
            async with http.get(b.url + "/api/chat/chat-h/stream") as resumed:
                assert resumed.status == 200
                live = await read_parts(resumed, 1)
                async with http.post(b.url + "/api/chat/chat-h/cancel") as cancel:
                    assert cancel.status == 202
                rest = await resumed.read()
            after_takeover = await first.read()
        assert b'"abort"' not in after_takeover  # the cancel came after the takeover
        await a.output.wait_for(r"session_end session=chat-h .*reason=cancelled")
        await until_nothing_runs(http, b, "chat-h")
        async with http.post(b.url + "/api/chat", json=chat_body("chat-ref", params=PARAMS)) as ref:
            reference = ui_parts(await ref.read())
    parts = live + ui_parts(rest)
    assert parts[0]["type"] == "start" and parts[0]["messageId"] == head[0]["messageId"]
    assert [p["type"] for p in parts].count("start") == 1
    assert text_of(parts).startswith(text_of(head))
    # Every token before hang_at, once: the whole answer's text starts with exactly it.
    assert len(text_of(parts)) > len(text_of(head))
    assert text_of(reference).startswith(text_of(parts))
    assert parts[-1] == {"type": "abort", "reason": "cancelled"}


async def test_only_detached_chat_answers_are_found_by_id_on_another_node(
    cluster: Cluster, redis: RedisServer
) -> None:
    """204 for an unknown id, for an answer that is not detachable (it ends with its
    request), and for a detached /api/stream session, whose resume needs its token."""
    a, b = await cluster(), await cluster()
    hang = {"max_tokens": 60, "hang_at": 2}
    async with aiohttp.ClientSession() as http:
        async with http.get(b.url + "/api/chat/nothing/stream") as response:
            assert response.status == 204
        sse = {"prompt": "x", "session_id": "sse-d", "on_disconnect": "detach", "llm_params": hang}
        async with (
            http.post(a.url + "/api/chat", json=chat_body("chat-a", params=hang)) as attached,
            http.post(a.url + "/api/stream", json=sse) as detached_sse,
        ):
            await attached.content.readuntil(b'"text-delta"')
            await detached_sse.content.readuntil(b'"content_chunk"')
            detached_sse.close()
            # Both are registered: an index, written in the same flush, would be there too.
            await eventually(lambda: stored(redis, "http:chat-a", "http:sse-d"))
            assert not await chat_index(redis, "chat-a") and not await chat_index(redis, "sse-d")
            for chat_id in ("chat-a", "sse-d"):
                async with http.get(f"{b.url}/api/chat/{chat_id}/stream") as response:
                    assert response.status == 204
            attached.close()
        async with http.post(b.url + "/api/sessions/sse-d/cancel") as cancel:
            assert cancel.status == 202


async def test_while_redis_does_not_answer_the_stream_route_says_so(
    cluster: Cluster, redis: RedisServer
) -> None:
    """Not a 204 (or a 200 not_running): the answer may well run on another node; the
    client may retry."""
    b = await cluster()
    redis.freeze(True)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(b.url + "/api/chat/chat-f/stream") as response:
                assert response.status == 500
                error = (await response.json())["error"]
            async with http.post(b.url + "/api/chat/chat-f/cancel") as response:
                assert response.status == 500
                cancel_error = (await response.json())["error"]
    finally:
        redis.freeze(False)
    assert error == cancel_error
    assert error["code"] == "internal"
    assert error["message"] == "the session store is unavailable; try again"


async def test_an_answer_whose_node_died_resumes_with_its_logged_parts_then_an_error(
    cluster: Cluster, redis: RedisServer
) -> None:
    a, b = await cluster(), await cluster()
    async with aiohttp.ClientSession() as http:
        head = await start_and_drop(http, a, "chat-k", {"max_tokens": 60, "hang_at": 3}, deltas=1)

        async def all_three_logged() -> bool:
            return len((await logged_text(redis, "chat-k")).split()) == 3

        await eventually(all_three_logged)
        a.kill()
        await a.process.wait()
        async with asyncio.timeout(10 * HEARTBEAT_S + 2):
            async with http.get(b.url + "/api/chat/chat-k/stream") as resumed:
                assert resumed.status == 200
                parts = ui_parts(await resumed.read())
    assert parts[0]["type"] == "start" and parts[0]["messageId"] == head[0]["messageId"]
    assert text_of(parts).startswith(text_of(head))
    assert len(text_of(parts).split()) == 3  # every token the dead node produced, once
    assert parts[-1] == {"type": "error", "errorText": "the node running this session was lost"}


async def stored(redis: RedisServer, *names: str) -> bool:
    """True once every one of ``names`` (under the key prefix) is in Redis."""
    client = connect(redis.url)
    try:
        return bool(await client.exists(*(f"tokenmux:{name}" for name in names)) == len(names))
    finally:
        await client.aclose()


async def logged_text(redis: RedisServer, chat_id: str) -> str:
    """The text the log of the chat's indexed answer holds so far."""
    index = await chat_index(redis, chat_id)
    if not index:
        return ""
    client = connect(redis.url)
    try:
        entries = await client.xrange(b"tokenmux:log:" + index[b"key"])
    finally:
        await client.aclose()
    items = [item for _, entry in entries for item in orjson.loads(entry[b"e"])]
    return "".join(i["data"]["content"] for i in items if i.get("type") == "content_chunk")


async def chat_index(redis: RedisServer, chat_id: str) -> dict[bytes, bytes]:
    """What Redis holds under ``chat:<chat id>`` (empty until an answer is indexed)."""
    client = connect(redis.url)
    try:
        index: dict[bytes, bytes] = await client.hgetall(f"tokenmux:chat:{chat_id}")
        return index
    finally:
        await client.aclose()


async def entry_state(redis: RedisServer, key: bytes) -> bytes | None:
    client = connect(redis.url)
    try:
        state: bytes | None = await client.hget(b"tokenmux:s:" + key, "state")
        return state
    finally:
        await client.aclose()


async def test_an_older_answer_ending_leaves_the_newer_one_found_and_cancellable(
    cluster: Cluster, redis: RedisServer
) -> None:
    """Two detached answers of one chat on two nodes: the older (on A) ends after the newer
    (on B) was indexed. A's stream and cancel routes still find the newer one, after A
    relayed it and its reader left, too."""
    a, b = await cluster(), await cluster()
    hang = {"max_tokens": 60, "hang_at": 2}
    async with aiohttp.ClientSession() as http:
        await start_and_drop(http, a, "chat-n", hang, deltas=1)

        async def indexed() -> bool:
            return bool(await chat_index(redis, "chat-n"))

        await eventually(indexed)
        older = (await chat_index(redis, "chat-n"))[b"key"]
        newer_head = await start_and_drop(http, b, "chat-n", hang, deltas=1)

        async def newer_indexed() -> bool:
            return (await chat_index(redis, "chat-n")).get(b"key", older) != older

        await eventually(newer_indexed)
        async with http.post(a.url + "/api/chat/chat-n/cancel") as cancel:  # the older
            assert cancel.status == 202
        await a.output.wait_for(r"session_end session=chat-n .*reason=cancelled")

        async def older_ended() -> bool:
            return await entry_state(redis, older) == b"ended"

        await eventually(older_ended)
        async with http.get(a.url + "/api/chat/chat-n/stream") as relayed:
            assert relayed.status == 200
            head = await read_parts(relayed, 1)
        assert head[0]["messageId"] == newer_head[0]["messageId"]
        async with http.post(a.url + "/api/chat/chat-n/cancel") as cancel:
            assert cancel.status == 202
            assert (await cancel.json())["status"] == "cancelling"
        await b.output.wait_for(r"session_end session=chat-n .*reason=cancelled")
        await until_nothing_runs(http, a, "chat-n")
        async with http.post(a.url + "/api/chat/chat-n/cancel") as cancel:
            assert cancel.status == 200
            assert (await cancel.json())["status"] == "not_running"
