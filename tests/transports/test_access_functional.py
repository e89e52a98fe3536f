"""Auth tokens, the Origin allowlist and CORS, attacked with real clients."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import InvalidStatus

from server.app import RunningServer
from server.config import Config
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory

TOKEN = "s3cret-token-value-0123456789"
APP = "https://app.example.com"


@pytest.fixture
async def guarded(start: Callable[[Config], Any], make_config: ConfigFactory) -> RunningServer:
    server: RunningServer = await start(
        make_config(auth={"tokens": [TOKEN], "allowed_origins": [APP]})
    )
    return server


async def ws_status(server: RunningServer, **kwargs: Any) -> int:
    """101 when the upgrade succeeds, else the HTTP status the server refused it with."""
    try:
        client = await WsClient.connect(server.url, **kwargs)
    except InvalidStatus as exc:
        return exc.response.status_code
    await client.receive()
    await client.close()
    return 101


async def test_websocket_requires_a_token(guarded: RunningServer) -> None:
    assert await ws_status(guarded) == 401
    assert await ws_status(guarded, additional_headers={"Authorization": "Bearer wrong"}) == 401
    assert await ws_status(guarded, additional_headers={"Authorization": f"Bearer {TOKEN}"}) == 101


async def test_websocket_token_in_a_subprotocol_is_never_echoed(guarded: RunningServer) -> None:
    from websockets.asyncio.client import connect

    url = guarded.url.replace("http", "ws") + "/ws"
    protocols: Any = ["tokenmux.v1.json", f"bearer.{TOKEN}"]
    async with connect(url, subprotocols=protocols) as ws:
        assert ws.subprotocol == "tokenmux.v1.json"
        assert ws.response is not None and TOKEN not in str(ws.response.headers)
    with pytest.raises(InvalidStatus):
        await connect(url, subprotocols=["tokenmux.v1.json", "bearer.nope"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (APP, 101),
        ("https://evil.example.com", 403),
        ("null", 403),
        ("https://app.example.com.evil.com", 403),
        ("https://app.example.co", 403),
        ("http://app.example.com", 403),
        ("https://APP.example.com", 403),
    ],
)
async def test_websocket_origin_is_matched_exactly(
    guarded: RunningServer, origin: str, status: int
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert await ws_status(guarded, origin=origin, additional_headers=headers) == status


async def test_http_routes_require_the_token_and_answer_json(guarded: RunningServer) -> None:
    body = {"prompt": "x", "llm_params": {"max_tokens": 1}}
    async with aiohttp.ClientSession() as http:
        for route in ("/api/stream", "/api/completion"):
            async with http.post(guarded.url + route, json=body) as response:
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "unauthorized"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post(guarded.url + "/api/completion", json=body, headers=headers) as ok:
            assert ok.status == 200
        async with http.get(guarded.url + "/healthz") as health:
            assert health.status == 200  # liveness probes need no token


def api_routes(server: RunningServer) -> list[tuple[str, str]]:
    """Every (method, concrete path) served under /api/ and /v1/, the fallbacks included."""
    found = []
    for route in server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and path.startswith(("/api/", "/v1/")):
            method = "DELETE" if route.method == "*" else route.method
            found.append((method, re.sub(r"\{[^}]*\}", "x", path)))
    return found


async def test_every_api_route_checks_the_token_and_the_origin(guarded: RunningServer) -> None:
    """No middleware runs the checks: each route must, the ones added later included."""
    routes = api_routes(guarded)
    assert ("POST", "/api/stream") in routes and ("POST", "/v1/chat/completions") in routes
    assert ("DELETE", "/api/x") in routes and ("DELETE", "/v1/x") in routes
    foreign = {"Origin": "https://evil.example.com", "Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        for method, path in routes:
            async with http.request(method, guarded.url + path, json={}) as response:
                assert response.status == 401, (method, path)
                assert (await response.json())["error"]["code"] == "unauthorized", (method, path)
            async with http.request(method, guarded.url + path, headers=foreign) as response:
                assert response.status == 403, (method, path)


async def test_cors_for_allowed_origins_only(guarded: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        preflight_headers = {"Origin": APP, "Access-Control-Request-Method": "POST"}
        async with http.options(guarded.url + "/api/stream", headers=preflight_headers) as pre:
            assert pre.status == 204
            assert pre.headers["Access-Control-Allow-Origin"] == APP
            assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
        headers = {"Origin": APP, "Authorization": f"Bearer {TOKEN}"}
        body = {"prompt": "x", "llm_params": {"max_tokens": 1}}
        async with http.post(guarded.url + "/api/stream", json=body, headers=headers) as stream:
            assert stream.status == 200
            assert stream.headers["Access-Control-Allow-Origin"] == APP
            assert stream.headers["Vary"] == "Origin"
            await stream.read()
        foreign = {"Origin": "https://evil.example.com", "Authorization": f"Bearer {TOKEN}"}
        async with http.post(guarded.url + "/api/stream", json=body, headers=foreign) as refused:
            assert refused.status == 403
            assert (await refused.json())["error"]["code"] == "forbidden_origin"
            assert "Access-Control-Allow-Origin" not in refused.headers


async def test_no_token_appears_in_any_log_line(
    guarded: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client = await WsClient.connect(guarded.url, additional_headers=headers)
    await client.receive()
    await client.start("s", params={"max_tokens": 3}, on_disconnect="detach")
    await client.until_ended({"s"})
    resume_token = client.events["s"][0]["data"]["resume_token"]
    await client.close()
    async with aiohttp.ClientSession() as http:
        url = f"{guarded.url}/api/sessions/s/events?resume_token={resume_token}"
        async with http.get(url, headers=headers) as response:
            await response.read()
        async with http.get(url.replace("/s/", "/other/"), headers=headers) as refused:
            assert refused.status == 401
    await ws_status(guarded, additional_headers={"Authorization": "Bearer leaked-guess"})
    # Only the server's own loggers: the test's client library logs its own headers.
    records = [r for r in caplog.records if r.name.startswith(("server", "tokenmux", "aiohttp"))]
    assert any(r.name == "aiohttp.access" for r in records), "no access log line at all"
    for record in records:
        line = record.getMessage()
        for secret in (TOKEN, resume_token, "leaked-guess"):
            assert secret not in line, line
    check_session(client.events["s"])
