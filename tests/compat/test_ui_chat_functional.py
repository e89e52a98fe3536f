"""POST /api/chat and its stream and cancel routes (PROTOCOL.md §11), on raw HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from server.app import RunningServer
from server.config import Config
from server.state import MANAGER
from tests._wait import eventually
from tests.conftest import ConfigFactory

Start = Callable[[Config], Any]


def chat_body(chat_id: str, **extra: Any) -> dict[str, Any]:
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hello"}]}
    return {"id": chat_id, "messages": [message], "trigger": "submit-message", **extra}


def ui_parts(raw: bytes) -> list[dict[str, Any]]:
    assert raw.endswith(b"data: [DONE]\n\n")
    return [json.loads(b[6:]) for b in raw[:-2].split(b"\n\n")[:-1] if b.startswith(b"data: ")]


async def test_an_answer_is_a_ui_message_stream(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            server.url + "/api/chat", json=chat_body("c1", params={"max_tokens": 3})
        )
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.content_type == "text/event-stream"
        parts = ui_parts(await response.read())
    kinds = [p["type"] for p in parts]
    assert kinds[:3] == ["start", "start-step", "text-start"]
    assert kinds[-3:] == ["text-end", "finish-step", "finish"]
    text = "".join(p["delta"] for p in parts if p["type"] == "text-delta")
    assert text.startswith("Hello") and parts[0]["messageId"].startswith("msg-")


async def test_bad_bodies_are_json_errors_before_the_stream(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        for body, field in (({"id": "c1", "messages": []}, "messages"), ({"messages": []}, "id")):
            response = await http.post(server.url + "/api/chat", json=body)
            assert response.status == 400
            error = (await response.json())["error"]
            assert error["code"] == "invalid_field" and error["message"].startswith(field)


async def test_stream_and_cancel_routes_when_nothing_runs(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.get(server.url + "/api/chat/nothing/stream")
        assert response.status == 204
        response = await http.post(server.url + "/api/chat/nothing/cancel")
        assert response.status == 200 and (await response.json())["status"] == "not_running"


async def test_a_dropped_request_cancels_unless_detached(server: RunningServer) -> None:
    sim = server.app[MANAGER].providers.get("sim")
    async with aiohttp.ClientSession() as http:
        for chat_id, detach in (("drop", False), ("keep", True)):
            extra = {"on_disconnect": "detach"} if detach else {}
            body = chat_body(chat_id, params={"hang_at": 2}, **extra)
            response = await http.post(server.url + "/api/chat", json=body)
            await response.content.readuntil(b'"text-delta"')
            response.close()
        await eventually(lambda: sim.stats.cancelled == 1)  # type: ignore[attr-defined]
        # The detached one still runs: it resumes, then its cancel route stops it.
        resumed = await http.get(server.url + "/api/chat/keep/stream")
        assert resumed.status == 200
        await resumed.content.readuntil(b'"text-delta"')
        cancel = await http.post(server.url + "/api/chat/keep/cancel")
        assert cancel.status == 202
        parts = ui_parts(await resumed.read())
        assert parts[-1] == {"type": "abort", "reason": "cancelled"}
    assert sim.stats.cancelled == 2  # type: ignore[attr-defined]


async def test_bearer_tokens_apply(start: Start, make_config: ConfigFactory) -> None:
    server: RunningServer = await start(make_config(auth={"tokens": ["s3cret"]}))
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.url + "/api/chat", json=chat_body("c1"))
        assert response.status == 401
        headers = {"Authorization": "Bearer s3cret"}
        response = await http.post(server.url + "/api/chat", json=chat_body("c1"), headers=headers)
        assert response.status == 200
        await asyncio.wait_for(response.read(), 5)


async def test_a_resume_whose_buffer_lost_the_start_still_has_the_whole_text(
    start: Start, make_config: ConfigFactory
) -> None:
    server: RunningServer = await start(make_config(resume={"buffer_events": 8}))
    params = {"max_tokens": 40, "tokens_per_second": 400}
    async with aiohttp.ClientSession() as http:
        body = chat_body("long", on_disconnect="detach", params=params)
        response = await http.post(server.url + "/api/chat", json=body)
        await response.content.readuntil(b'"text-delta"')
        response.close()
        await asyncio.sleep(0.05)  # more than 8 events later: the start is gone
        resumed = await http.get(server.url + "/api/chat/long/stream")
        parts = ui_parts(await resumed.read())
        whole = await http.post(
            server.url + "/api/completion",
            json={"prompt": "Hello", "llm_params": {"max_tokens": 40}},
        )
        expected = (await whole.json())["content"]
    assert [p["type"] for p in parts[:3]] == ["start", "start-step", "text-start"]
    assert "messageMetadata" not in parts[0]  # opened by metadata{recovered: false}
    assert "".join(p["delta"] for p in parts if p["type"] == "text-delta") == expected
    assert parts[-1]["type"] == "finish"
