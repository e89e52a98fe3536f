"""SSE-to-SSE takeovers and the end of an EventSource's life (PROTOCOL.md §6).

An EventSource often reconnects before the server has noticed its old connection died:
closing the old connection must not take the session from the new one. And a session that
ended with nothing left to send answers 204, on which EventSource stops reconnecting.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from server.app import RunningServer
from tests._client import check_session
from tests._sse import parse_eventsource

SLOW = {"max_tokens": 30, "tokens_per_second": 40}


async def read_events(response: aiohttp.ClientResponse, until_seq: int) -> list[dict[str, Any]]:
    """Read SSE blocks until the event numbered ``until_seq`` (pings skipped)."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["seq"] < until_seq:
        block = await response.content.readuntil(b"\n\n")
        data = [line for line in block.split(b"\n") if line.startswith(b"data: ")]
        if data:
            events.append(json.loads(data[0][6:]))
    return events


async def start_detached(http: aiohttp.ClientSession, url: str, sid: str) -> aiohttp.ClientResponse:
    body = {"prompt": "x", "session_id": sid, "on_disconnect": "detach", "llm_params": SLOW}
    response = await http.post(url + "/api/stream", json=body)
    assert response.status == 200
    return response


async def test_closing_the_posting_connection_leaves_the_session_with_its_events_get(
    server: RunningServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        first = await start_detached(http, server.url, "t1")
        seen = await read_events(first, 3)
        token = seen[0]["data"]["resume_token"]
        url = f"{server.url}/api/sessions/t1/events?resume_token={token}"
        async with http.get(url, headers={"Last-Event-ID": "3"}) as second:
            head = await read_events(second, 4)
            first.close()  # the old connection goes away after the takeover
            rest = head + parse_eventsource(await second.read())
    assert rest[0]["seq"] == 4
    end = check_session(seen + rest)
    assert end["reason"] == "complete"


async def test_closing_an_earlier_events_get_leaves_the_session_with_the_later_one(
    server: RunningServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        first = await start_detached(http, server.url, "t2")
        seen = await read_events(first, 3)
        first.close()
        token = seen[0]["data"]["resume_token"]
        url = f"{server.url}/api/sessions/t2/events?resume_token={token}"
        old = await http.get(url, headers={"Last-Event-ID": "3"})
        seen += await read_events(old, 5)
        # The EventSource reconnects before the server noticed the old connection died.
        async with http.get(url, headers={"Last-Event-ID": "5"}) as new:
            head = await read_events(new, 6)
            old.close()
            rest = head + parse_eventsource(await new.read())
    end = check_session(seen + rest)
    assert end["reason"] == "complete"


async def test_an_ended_session_with_nothing_after_last_event_id_answers_204(
    server: RunningServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        first = await start_detached(http, server.url, "t3")
        body = await first.read()
        events = [json.loads(line[6:]) for line in body.split(b"\n") if line[:7] == b"data: {"]
        token, last = events[0]["data"]["resume_token"], events[-1]["seq"]
        assert events[-1]["type"] == "stream_end"
        url = f"{server.url}/api/sessions/t3/events?resume_token={token}"
        async with http.get(url, headers={"Last-Event-ID": str(last)}) as done:
            assert done.status == 204
            assert await done.read() == b""
        # One event still missed: it is sent, with the usual end of stream.
        async with http.get(url, headers={"Last-Event-ID": str(last - 1)}) as tail:
            assert tail.status == 200
            assert [e["seq"] for e in parse_eventsource(await tail.read())] == [last]
