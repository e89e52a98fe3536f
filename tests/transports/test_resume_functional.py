"""Resume after reconnect (PROTOCOL.md §6): no gap, no duplicate, no way in without the token."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from server.app import RunningServer
from server.config import Config
from server.sessions.session import Session
from server.state import MANAGER
from tests._client import WsClient, check_session
from tests._sse import open_detached_sse, parse_eventsource
from tests.conftest import ConfigFactory

PARAMS = {"max_tokens": 60, "tokens_per_second": 400}


async def expected_text(server: RunningServer, prompt: str, params: dict[str, Any]) -> str:
    async with aiohttp.ClientSession() as http:
        body = {"prompt": prompt, "llm_params": params}
        async with http.post(server.url + "/api/completion", json=body) as response:
            text: str = (await response.json())["content"]
            return text


async def cut_and_resume(server: RunningServer, sid: str, cut: int) -> list[dict[str, Any]]:
    """Start a detachable session, kill the TCP connection after seq ``cut``, resume."""
    first = await WsClient.connect(server.url)
    await first.receive()
    await first.start(sid, f"prompt {sid}", params=PARAMS, on_disconnect="detach")
    await first.receive_until(lambda e: e.get("session") == sid and e["seq"] == cut)
    first.ws.transport.abort()  # no close handshake: the server just loses the socket
    seen = first.events[sid][: cut + 1]
    token = seen[0]["data"]["resume_token"]
    second = await WsClient.connect(server.url)
    await second.receive()
    await second.send(
        {"type": "resume", "session": sid, "data": {"resume_token": token, "after_seq": cut}}
    )
    await second.until_ended({sid})
    await second.close()
    return seen + second.events[sid]


async def test_resume_at_many_random_cut_points_loses_and_repeats_nothing(
    server: RunningServer,
) -> None:
    cuts = random.Random(11).sample(range(0, 60), 16)
    lives = await asyncio.gather(*(cut_and_resume(server, f"cut{c}", c) for c in cuts))
    for cut, events in zip(cuts, lives, strict=True):
        end = check_session(events)  # contiguous seq from 0, one stream_end: no gap, no dup
        assert end["reason"] == "complete", cut
        assert end["text"] == await expected_text(server, f"prompt cut{cut}", PARAMS)


async def test_resume_token_is_unguessable_and_checked(server: RunningServer) -> None:
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params={"hang_at": 1}, on_disconnect="detach")
    start = await client.receive_until(lambda e: e["type"] == "stream_start")
    token = start["data"]["resume_token"]
    assert isinstance(token, str) and len(token) >= 32
    other = await WsClient.connect(server.url)
    await other.receive()
    for session, attempt in (("s", token[:-1] + "x"), ("s", "guess"), ("t", token)):
        resume = {"resume_token": attempt, "after_seq": 0}
        await other.send({"type": "resume", "session": session, "data": resume})
        error = await other.connection_event()
        assert error["data"]["code"] == "unauthorized"
        assert error["data"]["ref"] == {"type": "resume", "session": session}
    await client.close()
    await other.close()


async def test_takeover_moves_a_live_session_to_the_new_socket(server: RunningServer) -> None:
    """A half-dead old socket the server has not noticed yet does not block the resume."""
    old = await WsClient.connect(server.url)
    await old.receive()
    await old.start(
        "s", params={"max_tokens": 40, "tokens_per_second": 200}, on_disconnect="detach"
    )
    await old.receive_until(lambda e: e.get("seq") == 3)
    token = old.events["s"][0]["data"]["resume_token"]
    new = await WsClient.connect(server.url)
    await new.receive()
    await new.send(
        {"type": "resume", "session": "s", "data": {"resume_token": token, "after_seq": 3}}
    )
    await new.until_ended({"s"})
    check_session(old.events["s"][:4] + new.events["s"])
    await old.close()  # closing the old socket no longer cancels the moved session
    await new.close()


async def test_without_detach_there_is_no_token_and_disconnect_cancels(
    server: RunningServer,
) -> None:
    """Only sessions that ask to outlive their socket keep a replay buffer and a token."""
    ended: asyncio.Queue[Session] = asyncio.Queue()
    server.app[MANAGER].on_session_end(ended.put_nowait)
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params={"hang_at": 5})
    await client.receive_until(lambda e: e.get("seq") == 2)
    assert client.events["s"][0]["data"]["resume_token"] is None
    await client.close()
    assert (await asyncio.wait_for(ended.get(), 5)).end_reason == "cancelled"


async def test_a_short_buffer_says_recovered_false_with_the_text_so_far(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(resume={"buffer_events": 8}))
    ended: asyncio.Queue[Session] = asyncio.Queue()
    server.app[MANAGER].on_session_end(ended.put_nowait)
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", "Hi", params={"max_tokens": 40}, on_disconnect="detach")
    await client.receive_until(lambda e: e.get("seq") == 1)
    token = client.events["s"][0]["data"]["resume_token"]
    await client.close()
    await asyncio.wait_for(ended.get(), 5)  # it ran on, detached, far past its buffer
    again = await WsClient.connect(server.url)
    await again.receive()
    await again.send(
        {"type": "resume", "session": "s", "data": {"resume_token": token, "after_seq": 1}}
    )
    await again.until_ended({"s"})
    replay = again.events["s"]
    recovery = replay[0]
    assert recovery["type"] == "metadata" and recovery["data"]["recovered"] is False
    assert [e["seq"] for e in replay] == list(range(recovery["seq"], recovery["seq"] + len(replay)))
    text = recovery["data"]["content_so_far"] + "".join(
        e["data"]["content"] for e in replay if e["type"] == "content_chunk"
    )
    assert text == replay[-2]["data"]["total_content"]
    assert text == await expected_text(server, "Hi", {"max_tokens": 40})
    await again.close()


async def test_an_unresumed_detached_session_is_cancelled_after_the_grace(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(resume={"grace_s": 0.2}))
    ended: asyncio.Queue[Session] = asyncio.Queue()
    server.app[MANAGER].on_session_end(ended.put_nowait)
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params={"hang_at": 1}, on_disconnect="detach")
    await client.receive_until(lambda e: e.get("seq") == 1)
    await client.close()
    session = await asyncio.wait_for(ended.get(), 5)
    assert session.end_reason == "timeout"


async def test_resume_off_means_null_tokens_and_cancel_on_close(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(resume={"enabled": False}))
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params={"max_tokens": 1}, on_disconnect="detach")
    await client.until_ended({"s"})
    assert client.events["s"][0]["data"]["resume_token"] is None
    await client.close()


async def test_eventsource_resume_route_honours_last_event_id(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        first, token = await open_detached_sse(http, server.url, "es")  # seq 0-3 seen
        url = f"{server.url}/api/sessions/es/events?resume_token={token}"
        async with http.get(url, headers={"Last-Event-ID": "3"}) as resumed:
            assert resumed.headers["Content-Type"] == "text/event-stream"
            raw = await resumed.read()
        async with http.get(url.replace(token, "wrong")) as refused:
            assert refused.status == 401
            assert (await refused.json())["error"]["code"] == "unauthorized"
    replay = parse_eventsource(raw)
    assert replay[0]["seq"] == 4
    check_session(first + replay)


@pytest.mark.parametrize("after_seq", [-1, 0])
async def test_resume_from_the_start_replays_everything(
    server: RunningServer, after_seq: int
) -> None:
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params={"max_tokens": 5}, on_disconnect="detach")
    await client.until_ended({"s"})
    token = client.events["s"][0]["data"]["resume_token"]
    again = await WsClient.connect(server.url)
    await again.receive()
    await again.send(
        {"type": "resume", "session": "s", "data": {"resume_token": token, "after_seq": after_seq}}
    )
    await again.until_ended({"s"})
    assert again.events["s"] == client.events["s"][after_seq + 1 :]
    await client.close()
    await again.close()
