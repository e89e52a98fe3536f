"""Several readers of one session (PROTOCOL.md §12), over WebSocket and EventSource."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import aiohttp
import orjson

from server.app import RunningServer
from server.config import Config
from server.state import CONNECTIONS
from tests._client import WsClient, check_session
from tests._rawws import RawWebSocket
from tests._sse import parse_eventsource
from tests._wait import eventually
from tests.conftest import ConfigFactory
from tests.transports.test_backpressure_functional import read_frame
from tests.transports.test_metrics import scrape, value

PARAMS = {"max_tokens": 60, "tokens_per_second": 200}


async def owner_at(server: RunningServer, sid: str, seq: int, **params: Any) -> WsClient:
    """A connection that started ``sid`` (detachable) and has read it up to ``seq``."""
    owner = await WsClient.connect(server.url)
    await owner.receive()
    await owner.start(sid, f"prompt {sid}", params=params or PARAMS, on_disconnect="detach")
    await owner.receive_until(lambda e: e.get("session") == sid and e["seq"] == seq)
    return owner


async def watcher(server: RunningServer) -> WsClient:
    client = await WsClient.connect(server.url)
    await client.receive()
    return client


def watch(sid: str, token: str, after_seq: int = -1) -> dict[str, Any]:
    return {
        "type": "watch",
        "session": sid,
        "data": {"resume_token": token, "after_seq": after_seq},
    }


def check_reader(events: list[dict[str, Any]], owner: list[dict[str, Any]]) -> None:
    """``events``, read by a reader that merged on its own, against the owner's: the
    same seq numbers, jumps only at chunks, every other event identical, all the text."""
    by_seq = {e["seq"]: e for e in owner}
    assert events[0] == owner[0] and events[-1] == owner[-1]
    for before, event in pairwise(events):
        assert event["seq"] > before["seq"]
        if event["seq"] != before["seq"] + 1:
            assert event["type"] == "content_chunk", event
    for event in events:
        theirs = by_seq[event["seq"]]
        if event["type"] == "content_chunk":
            assert event["data"]["index"] == theirs["data"]["index"]
            assert event["data"]["accumulated_length"] == theirs["data"]["accumulated_length"]
        else:
            assert event == theirs
    text = "".join(e["data"]["content"] for e in events if e["type"] == "content_chunk")
    assert text == "".join(e["data"]["content"] for e in owner if e["type"] == "content_chunk")


def token_of(client: WsClient, sid: str) -> str:
    token: str = client.events[sid][0]["data"]["resume_token"]
    return token


async def test_every_reader_sees_the_same_events_and_the_owner_keeps_its_session(
    server: RunningServer,
) -> None:
    owner = await owner_at(server, "w", 3)
    token = token_of(owner, "w")
    first, second = await watcher(server), await watcher(server)
    await first.send(watch("w", token))
    await second.send(watch("w", token, after_seq=3))
    for client in (owner, first, second):
        await client.until_ended({"w"})
    end = check_session(owner.events["w"])
    assert end["reason"] == "complete"
    assert first.events["w"] == owner.events["w"]
    assert second.events["w"] == owner.events["w"][4:]
    for client in (owner, first, second):
        await client.close()


async def test_refusals_unauthorized_and_duplicate_session(server: RunningServer) -> None:
    owner = await owner_at(server, "r", 1)
    token = token_of(owner, "r")
    reader = await watcher(server)
    await reader.send({**watch("r", "wrong"), "ref": "a"})
    refused = await reader.connection_event()
    assert (refused["type"], refused["data"]["code"]) == ("error", "unauthorized")
    await reader.send(watch("r", token))
    await reader.send({**watch("r", token), "ref": "b"})
    twice = await reader.receive_until(lambda e: e["type"] == "error")
    assert twice["data"]["code"] == "duplicate_session"
    await owner.send(watch("r", token))  # live there already: its own connection
    own = await owner.receive_until(lambda e: e["type"] == "error")
    assert own["data"]["code"] == "duplicate_session"
    await owner.until_ended({"r"})
    await reader.until_ended({"r"})
    assert reader.events["r"] == owner.events["r"]  # refusals changed nothing
    await owner.close()
    await reader.close()


async def test_a_reader_cancels_and_every_reader_sees_cancelled(server: RunningServer) -> None:
    slow = {"max_tokens": 2000, "tokens_per_second": 50}
    owner = await owner_at(server, "c", 2, **slow)
    token = token_of(owner, "c")
    first, second = await watcher(server), await watcher(server)
    await first.send(watch("c", token, after_seq=2))
    await second.send(watch("c", token, after_seq=2))
    await first.receive_until(lambda e: e.get("session") == "c")
    await first.cancel("c")
    for client in (owner, first, second):
        await client.until_ended({"c"})
        assert client.events["c"][-1]["data"]["reason"] == "cancelled"
    assert first.events["c"] == second.events["c"] == owner.events["c"][3:]
    for client in (owner, first, second):
        await client.close()


async def test_unwatch_stops_one_reader_and_the_session_goes_on(server: RunningServer) -> None:
    slow = {"max_tokens": 40, "tokens_per_second": 40}
    owner = await owner_at(server, "u", 1, **slow)
    reader = await watcher(server)
    await reader.send(watch("u", token_of(owner, "u"), after_seq=1))
    await reader.receive_until(lambda e: e.get("session") == "u")
    await reader.send({"type": "unwatch", "session": "u"})
    await reader.send({"type": "ping", "data": {"n": 1}})
    await reader.receive_until(lambda e: e["type"] == "pong")  # unwatch has been handled
    seen = len(reader.events["u"])
    await owner.until_ended({"u"})
    assert owner.events["u"][-1]["data"]["reason"] == "complete"
    await reader.send({"type": "ping", "data": {"n": 2}})
    await reader.receive_until(lambda e: e["type"] == "pong")
    assert len(reader.events["u"]) == seen  # nothing more after unwatch
    await reader.send({"type": "unwatch", "session": "nope", "ref": "x"})
    unknown = await reader.connection_event()
    assert unknown["data"]["code"] == "session_not_found"
    await owner.close()
    await reader.close()


async def test_a_stalled_reader_neither_slows_the_session_nor_the_others(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    limits = {
        "send_timeout_s": 30.0,
        "outbox_merge_bytes": 4096,
        "outbox_max_bytes": 8 * 1024 * 1024,
        "socket_send_buffer_bytes": 4096,
    }
    # Every event kept, so the readers that join late can be compared with the owner.
    server = await start(make_config(limits=limits, resume={"buffer_events": 100_000}))
    owner = await owner_at(server, "s", 0, max_tokens=20_000)
    token = token_of(owner, "s")
    stalled = await RawWebSocket.connect(server.url)
    await stalled.send_text(json.dumps(watch("s", token)))
    connections = server.app[CONNECTIONS]
    await eventually(lambda: any(c.scope.watching("s") for c in connections), within=5, every=0.01)
    stalled_connection = next(c for c in connections if c.scope.watching("s"))
    reader = await watcher(server)
    await reader.send(watch("s", token))
    # The stalled reader reads nothing while the session runs to its end for the others.
    await owner.until_ended({"s"})
    await reader.until_ended({"s"})
    assert check_session(owner.events["s"])["reason"] == "complete"
    check_reader(reader.events["s"], owner.events["s"])  # it may have lagged a little too
    await eventually(lambda: stalled_connection.outbox.merged > 0, within=5, every=0.01)

    # Read now: whole text, in order, with seq jumping only at merged chunks.
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != "stream_end":
        _, payload = await read_frame(stalled)
        event = orjson.loads(payload)
        if event.get("session") == "s":
            events.append(event)
    check_reader(events, owner.events["s"])
    assert len(events) < len(owner.events["s"])
    stalled.abort()
    await owner.close()
    await reader.close()


async def test_eventsource_watch_reads_without_taking_over(server: RunningServer) -> None:
    owner = await owner_at(server, "e", 2)
    url = f"{server.url}/api/sessions/e/events?resume_token={token_of(owner, 'e')}&watch=1"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Last-Event-ID": "2"}) as first:
            async with http.get(url) as second:
                assert first.status == second.status == 200
                one = parse_eventsource(await first.read())
                two = parse_eventsource(await second.read())
        async with http.get(url.replace("resume_token=", "resume_token=x")) as refused:
            assert refused.status == 401
    await owner.until_ended({"e"})
    assert check_session(owner.events["e"])["reason"] == "complete"
    assert one == owner.events["e"][3:]
    assert two == owner.events["e"]
    await owner.close()


async def test_metrics_count_readers_now_and_per_session(server: RunningServer) -> None:
    owner = await owner_at(server, "m", 1, max_tokens=2000, tokens_per_second=50)
    readers = [await watcher(server) for _ in range(3)]
    for reader in readers:
        await reader.send(watch("m", token_of(owner, "m"), after_seq=1))
        await reader.receive_until(lambda e: e.get("session") == "m")
    live = await scrape(server.url)
    assert value(live, "tokenmux_readers") == 3
    await readers[0].send({"type": "unwatch", "session": "m"})
    await owner.cancel("m")
    for client in (owner, *readers[1:]):
        await client.until_ended({"m"})
    after = await scrape(server.url)
    assert value(after, "tokenmux_readers") == 0
    assert value(after, "tokenmux_session_readers_count") == 1
    assert value(after, "tokenmux_session_readers_bucket", le="2.0") == 0  # it had 3
    assert value(after, "tokenmux_session_readers_bucket", le="4.0") == 1
    for client in (owner, *readers):
        await client.close()


async def test_a_reader_reads_on_through_a_detach_and_a_takeover(server: RunningServer) -> None:
    slow = {"max_tokens": 60, "tokens_per_second": 60}
    owner = await owner_at(server, "t", 2, **slow)
    token = token_of(owner, "t")
    reader = await watcher(server)
    await reader.send(watch("t", token))
    await reader.receive_until(lambda e: e.get("session") == "t" and e["seq"] >= 3)
    owner.ws.transport.abort()  # the owner's side detaches...
    await reader.receive_until(lambda e: e.get("session") == "t" and e["seq"] >= 6)
    taker = await watcher(server)  # ...and is taken over by a resume
    resume = {"resume_token": token, "after_seq": reader.events["t"][-1]["seq"]}
    await taker.send({"type": "resume", "session": "t", "data": resume})
    await reader.until_ended({"t"})
    await taker.until_ended({"t"})
    assert check_session(reader.events["t"])["reason"] == "complete"
    assert taker.events["t"] == reader.events["t"][-len(taker.events["t"]) :]
    await reader.close()
    await taker.close()
