"""A small protocol-aware test client over the `websockets` library."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["WsClient", "check_session"]


class WsClient:
    """Sends client messages and sorts received events by session."""

    def __init__(self, ws: ClientConnection, *, binary: bool = False) -> None:
        self.ws = ws
        self.binary = binary
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.connection_events: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, base_url: str, *, encoding: str = "json", **kwargs: Any) -> WsClient:
        url = base_url.replace("http://", "ws://") + "/ws"
        subprotocols = [f"tokenmux.v1.{encoding}"]
        ws = await connect(url, subprotocols=subprotocols, **kwargs)  # type: ignore[arg-type]
        return cls(ws, binary=encoding == "msgpack")

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        if self.binary:
            await self.ws.send(msgpack.packb(message))
        else:
            await self.ws.send(json.dumps(message))

    async def start(self, session: str, prompt: str = "Hello", **data: Any) -> None:
        await self.send({"type": "start", "session": session, "data": {"prompt": prompt, **data}})

    async def cancel(self, session: str) -> None:
        await self.send({"type": "cancel", "session": session})

    async def receive(self) -> dict[str, Any]:
        frame = await self.ws.recv()
        if self.binary:
            assert isinstance(frame, bytes), "text frame on a msgpack connection"
            event: dict[str, Any] = msgpack.unpackb(frame)
        else:
            event = json.loads(frame)
        if "session" in event:
            self.events[event["session"]].append(event)
        else:
            self.connection_events.append(event)
        return event

    async def receive_until(self, predicate: Any) -> dict[str, Any]:
        while True:
            event = await self.receive()
            if predicate(event):
                return event

    async def connection_event(self) -> dict[str, Any]:
        return await self.receive_until(lambda e: "session" not in e)

    async def until_ended(self, sessions: set[str]) -> None:
        """Receive until every session in ``sessions`` has its stream_end."""
        waiting = set(sessions) - {s for s, evs in self.events.items() if _ended(evs)}
        while waiting:
            event = await self.receive()
            if event["type"] == "stream_end":
                waiting.discard(event["session"])


def _ended(events: list[dict[str, Any]]) -> bool:
    return bool(events) and events[-1]["type"] == "stream_end"


def check_session(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Assert one session's events obey PROTOCOL.md sections 2 and 8; return stream_end."""
    assert events, "no events"
    types = [e["type"] for e in events]
    assert [e["seq"] for e in events] == list(range(len(events))), types
    assert types[0] == "stream_start"
    assert types[-1] == "stream_end" and types.count("stream_end") == 1, types
    middle = types[1:-1]
    settled = [t for t in middle if t in ("content_complete", "error")]
    assert len(settled) <= 1 and (not settled or middle[-1] == settled[0]), types
    assert set(middle) <= KINDS, types
    for event in events:
        assert isinstance(event["timestamp"], int)
        assert event["session"] == events[0]["data"]["session_id"]
    chunks = [e["data"] for e in events if e["type"] == "content_chunk"]
    text = ""
    for i, chunk in enumerate(chunks):
        text += chunk["content"]
        assert chunk["index"] == i
        assert chunk["accumulated_length"] == len(text)
    reasoning = _check_reasoning(events)
    calls = _check_tool_calls(events)
    end = events[-1]["data"]
    assert end["chunks"] == len(chunks)
    reason = end["reason"]
    if reason == "complete":
        assert settled == ["content_complete"]
        complete = events[-2]["data"]
        assert complete["total_content"] == text
        assert complete["total_length"] == len(text)
        if reasoning:
            assert complete["reasoning"]["text"] == reasoning
        assert complete.get("tool_calls", []) == calls
    elif reason == "error":
        assert settled == ["error"]
        assert set(events[-2]["data"]) >= {"code", "message", "retryable"}
    else:
        assert not settled, (reason, types)
    usage = set(end["usage"])
    assert {"input_tokens", "output_tokens", "estimated"} <= usage <= USAGE_KEYS, usage
    return dict(end, text=text, reasoning=reasoning, tool_calls=calls)


KINDS = {
    "content_chunk",
    "reasoning_chunk",
    "tool_call_start",
    "tool_call_delta",
    "tool_call_end",
    "source",
    "metadata",
    "content_complete",
    "error",
}
USAGE_KEYS = {
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "estimated",
}


def _check_reasoning(events: list[dict[str, Any]]) -> str:
    """reasoning_chunk counts apart from content (PROTOCOL.md section 9); its text."""
    text = ""
    for i, data in enumerate(e["data"] for e in events if e["type"] == "reasoning_chunk"):
        text += data["content"]
        assert data["index"] == i and data["accumulated_length"] == len(text)
    return text


def _check_tool_calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call: start (indexed in order), deltas, end with the parsed arguments."""
    started: dict[str, str] = {}
    fragments: dict[str, str] = {}
    ended: list[dict[str, Any]] = []
    for event in events:
        data = event["data"]
        if event["type"] == "tool_call_start":
            assert data["id"] not in started and data["index"] == len(started)
            started[data["id"]], fragments[data["id"]] = data["name"], ""
        elif event["type"] == "tool_call_delta":
            fragments[data["id"]] += data["arguments_delta"]
        elif event["type"] == "tool_call_end":
            assert started[data["id"]] == data["name"]
            if data["arguments"] is None:
                assert data["error"] == "invalid_json"
                assert data["arguments_text"] == fragments[data["id"]]
            else:
                assert json.loads(fragments[data["id"]] or "{}") == data["arguments"]
            ended.append(data)
    assert len(ended) == len(started)
    return ended
