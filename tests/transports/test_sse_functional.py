"""POST /api/stream, /api/completion and /api/sessions/{id}/cancel, end to end, on raw bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from server.app import RunningServer
from server.config import Config
from server.sessions.session import Session
from server.state import MANAGER
from tests._client import check_session
from tests._sse import parse_sse
from tests.conftest import ConfigFactory


async def post_stream(url: str, body: Any) -> tuple[aiohttp.ClientResponse, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/stream", json=body) as response:
            return response, await response.read()


async def test_stream_is_data_lines_then_done(server: RunningServer) -> None:
    response, raw = await post_stream(
        server.url, {"prompt": "Hi ✨", "session_id": "sse-1", "llm_params": {"max_tokens": 8}}
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    events, _ = parse_sse(raw)
    end = check_session(events)
    assert end["reason"] == "complete" and end["text"].startswith("Hi ✨")
    assert events[0]["session"] == "sse-1"


async def test_same_request_same_text_as_completion(server: RunningServer) -> None:
    """The simulator is deterministic: /api/completion answers what /api/stream streamed."""
    body = {"prompt": "Tell me", "llm_params": {"max_tokens": 20}}
    _, raw = await post_stream(server.url, body)
    streamed = check_session(parse_sse(raw)[0])["text"]
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/completion", json=body) as response:
            answer = await response.json()
    assert response.status == 200
    assert answer["content"] == streamed
    assert answer["provider"] == "sim" and answer["model"] == "sim-1"
    assert answer["usage"]["estimated"] is False and answer["reason"] == "complete"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b"[1]", 400, "bad_request"),
        (b'{"llm_params": {}}', 400, "invalid_field"),
        (b'{"prompt": "x", "provider": "nope"}', 400, "unknown_provider"),
        (b'{"prompt": "x", "llm_params": {"max_tokens": -1}}', 400, "invalid_field"),
    ],
)
async def test_errors_before_streaming_are_json_http_errors(
    server: RunningServer, body: bytes, status: int, code: str
) -> None:
    async with aiohttp.ClientSession() as http:
        for route in ("/api/stream", "/api/completion"):
            async with http.post(server.url + route, data=body) as response:
                assert response.status == status
                assert response.content_type == "application/json"
                error = (await response.json())["error"]
                assert error["code"] == code and error["message"]


async def test_oversize_body_is_message_too_large(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(limits={"max_message_bytes": 200}))
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/stream", json={"prompt": "x" * 500}) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "message_too_large"


async def test_provider_failure_mid_stream_is_an_error_event(server: RunningServer) -> None:
    _, raw = await post_stream(server.url, {"prompt": "x", "llm_params": {"fail_at": 3}})
    events, _ = parse_sse(raw)
    end = check_session(events)
    assert end["reason"] == "error" and end["chunks"] == 3
    assert events[-2]["data"]["code"] == "provider_error"
    assert events[-2]["data"]["retryable"] is True


async def test_completion_failure_is_an_http_error(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"prompt": "x", "llm_params": {"fail_at": 0, "fail_code": "provider_auth"}}
        async with http.post(server.url + "/api/completion", json=body) as response:
            assert response.status == 502
            assert (await response.json())["error"]["code"] == "provider_auth"


def watch_session_ends(server: RunningServer) -> asyncio.Queue[Session]:
    ended: asyncio.Queue[Session] = asyncio.Queue()
    server.app[MANAGER].on_session_end(ended.put_nowait)
    return ended


async def test_client_disconnect_cancels_the_session(server: RunningServer) -> None:
    """Closing the HTTP connection mid-stream cancels the session and the provider."""
    ended = watch_session_ends(server)
    sim = server.app[MANAGER].providers.get("sim")
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            server.url + "/api/stream", json={"prompt": "x", "llm_params": {"hang_at": 2}}
        )
        async for line in response.content:
            if b'"content_chunk"' in line and b'"index":1' in line:
                break
        response.close()  # drop the connection without reading on
    session = await asyncio.wait_for(ended.get(), 5)
    assert session.end_reason == "cancelled"
    assert sim.stats.cancelled == 1 and sim.stats.active == 0  # type: ignore[attr-defined]


async def test_cancel_route_ends_a_running_stream(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            server.url + "/api/stream",
            json={"prompt": "x", "session_id": "job-7", "llm_params": {"hang_at": 1}},
        )
        await response.content.readuntil(b'"content_chunk"')
        async with http.post(server.url + "/api/sessions/job-7/cancel") as cancel:
            assert cancel.status == 202
        raw = b'data: {"type":"content_chunk"' + await response.read()
        events, _ = parse_sse(raw[raw.index(b"data: ") :])
        assert events[-1]["type"] == "stream_end" and events[-1]["data"]["reason"] == "cancelled"
        async with http.post(server.url + "/api/sessions/job-7/cancel") as again:
            assert again.status == 200 and (await again.json())["status"] == "ended"
        async with http.post(server.url + "/api/sessions/never/cancel") as missing:
            assert missing.status == 404
            error = (await missing.json())["error"]
            assert error["code"] == "session_not_found"
            assert error["message"] == "no session 'never' here (never started, or ended long ago)"


async def test_duplicate_live_session_id_is_409(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        first = await http.post(
            server.url + "/api/stream",
            json={"prompt": "x", "session_id": "dup", "llm_params": {"hang_at": 0}},
        )
        await first.content.readuntil(b"stream_start")
        async with http.post(
            server.url + "/api/stream", json={"prompt": "y", "session_id": "dup"}
        ) as second:
            assert second.status == 409
            assert (await second.json())["error"]["code"] == "duplicate_session"
        first.close()


async def test_keepalive_comments_while_waiting_for_the_first_token(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(sse={"keepalive_s": 0.05}))
    _, raw = await post_stream(
        server.url, {"prompt": "x", "llm_params": {"ttft_ms": 300, "max_tokens": 1}}
    )
    events, comments = parse_sse(raw)
    assert comments and set(comments) == {b": ping"}
    assert check_session(events)["reason"] == "complete"


async def test_health(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok" and body["providers"] == ["sim"]
