"""PROTOCOL.md section 9 end to end on the simulator: reasoning, a whole tool loop,
sources and refusals over WebSocket, SSE and /api/completion."""

from __future__ import annotations

from typing import Any

import aiohttp

from server.app import RunningServer
from tests._client import WsClient, check_session
from tests._sse import parse_sse

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
ASK = [{"role": "user", "content": "Weather in Oslo?"}]
THINK = {"reasoning_tokens": 4, "max_tokens": 3}


async def over_ws(server: RunningServer, **data: Any) -> list[dict[str, Any]]:
    client = await WsClient.connect(server.url)
    await client.send({"type": "start", "session": "s1", "data": data})
    await client.until_ended({"s1"})
    await client.close()
    return client.events["s1"]


async def over_sse(server: RunningServer, **body: Any) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/stream", json=body) as response:
            assert response.status == 200
            events, _ = parse_sse(await response.read())
    return events


async def completion(server: RunningServer, **body: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/completion", json=body) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
    return answer


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def test_a_whole_tool_loop_over_websocket(server: RunningServer) -> None:
    events = await over_ws(server, messages=ASK, tools=[WEATHER], params=THINK)
    end = check_session(events)
    assert kinds(events) == [
        "stream_start",
        *["reasoning_chunk"] * 4,
        "tool_call_start",
        *["tool_call_delta"] * 3,
        "tool_call_end",
        "metadata",
        "content_complete",
        "stream_end",
    ]
    assert end["reason"] == "complete" and end["chunks"] == 0 and end["text"] == ""
    (call,) = end["tool_calls"]
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "sample"}
    assert events[5]["data"] == {"id": call["id"], "name": "get_weather", "index": 0}
    metadata = events[-3]["data"]
    assert metadata["finish_reason"] == "tool_calls"
    assert metadata["raw_finish_reason"] == "tool_calls"
    assert metadata["usage"]["reasoning_tokens"] == 4
    complete = events[-2]["data"]
    assert complete["reasoning"]["text"] == end["reasoning"]
    assert complete["reasoning"]["signature"].startswith("sim-")
    # The client runs the tool and sends the result back: the model answers in text.
    turns = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "reasoning": complete["reasoning"],
            "tool_calls": [{k: call[k] for k in ("id", "name", "arguments")}],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 3}'},
    ]
    answer = check_session(await over_ws(server, messages=turns, tools=[WEATHER]))
    assert answer["text"].startswith('get_weather returned: {"temp": 3}')
    assert not answer["tool_calls"]


async def test_tool_call_and_reasoning_over_sse(server: RunningServer) -> None:
    body = {"messages": ASK, "tools": [WEATHER], "llm_params": THINK, "tool_choice": "required"}
    events = await over_sse(server, **body)
    end = check_session(events)
    assert end["reason"] == "complete" and len(end["reasoning"].split()) == 4
    assert [c["name"] for c in end["tool_calls"]] == ["get_weather"]
    assert events[-2]["data"]["tool_calls"] == end["tool_calls"]


async def test_completion_returns_reasoning_and_tool_calls(server: RunningServer) -> None:
    answer = await completion(server, messages=ASK, tools=[WEATHER], llm_params=THINK)
    assert answer["content"] == "" and answer["reason"] == "complete"
    assert len(answer["reasoning"]["text"].split()) == 4
    assert answer["reasoning"]["signature"].startswith("sim-")
    (call,) = answer["tool_calls"]
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "sample"}
    assert answer["usage"]["reasoning_tokens"] == 4
    plain = await completion(server, prompt="Hi", llm_params={"max_tokens": 2})
    assert "reasoning" not in plain and "tool_calls" not in plain


async def test_tool_choice_none_answers_in_text(server: RunningServer) -> None:
    events = await over_ws(server, messages=ASK, tools=[WEATHER], tool_choice="none")
    end = check_session(events)
    assert end["text"].startswith("Weather in Oslo?") and not end["tool_calls"]


async def test_sources_and_a_refusal(server: RunningServer) -> None:
    events = await over_ws(server, prompt="Cite", params={"sources": 2, "max_tokens": 2})
    check_session(events)
    sources = [e["data"] for e in events if e["type"] == "source"]
    assert sources == [
        {"url": "https://example.com/sim/1", "title": "Simulated source 1", "document_index": 0},
        {"url": "https://example.com/sim/2", "title": "Simulated source 2", "document_index": 1},
    ]
    refused = await over_ws(server, prompt="No", params={"refusal": "Not this."})
    end = check_session(refused)
    assert end["reason"] == "complete" and end["text"] == ""
    metadata = [e["data"] for e in refused if e["type"] == "metadata"][-1]
    assert metadata["refusal"] == "Not this." and metadata["finish_reason"] == "content_filter"


async def test_a_bad_rich_field_is_invalid_field_naming_it(server: RunningServer) -> None:
    client = await WsClient.connect(server.url)
    await client.send(
        {"type": "start", "session": "s1", "data": {"prompt": "x", "tools": [{"name": "1"}]}}
    )
    error = await client.connection_event()
    while error["type"] != "error":
        error = await client.connection_event()
    assert error["data"]["code"] == "invalid_field"
    assert error["data"]["message"].startswith("data.tools[0].name:")
    await client.close()
