"""The aiohttp private names tokenmux uses (server/transports/aiohttp_private.py) still exist
and still behave as the writers assume, on a real server: a renamed one fails here, loudly."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from server.transports.aiohttp_private import AiohttpChanged, ChunkedBody, WsTransport, _private

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture
async def raw_server() -> AsyncIterator[str]:
    """A bare aiohttp server whose handlers write through the wrappers."""

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        writer = WsTransport(ws)
        assert not writer.paused
        await writer.drain()  # not paused: returns at once
        writer.write(b"\x81\x05hello\x81\x05world")  # two whole text frames, one write
        await ws.close()
        with pytest.raises(ConnectionError):
            writer.write(b"\x81\x01!")  # after the close frame: refused, as aiohttp does
        return ws

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        body = ChunkedBody(request, response)
        assert body.chunked and not body.paused and not body.closing
        await body.drain()
        body.write(b"data: 1\n\n")  # framed by us...
        await response.write(b"data: 2\n\n")  # ...then by aiohttp: they must interleave
        body.write(b"data: 3\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_get("/stream", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_the_websocket_writer_reaches_aiohttps_frame_writer(raw_server: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(raw_server + "/ws") as ws:
        assert [await ws.receive_str(), await ws.receive_str()] == ["hello", "world"]
        assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE


async def test_the_sse_body_frames_chunks_exactly_as_aiohttp_does(raw_server: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(raw_server + "/stream") as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert await response.read() == b"data: 1\n\ndata: 2\n\ndata: 3\n\n"


def test_a_missing_private_name_fails_loudly() -> None:
    with pytest.raises(AiohttpChanged, match=r"object\._drain_helper is gone"):
        _private(object(), "_drain_helper", "waiting while paused")


def test_aiohttp_is_capped_at_a_minor_version_the_suite_passed_on() -> None:
    """pyproject caps aiohttp; the installed one (what this suite runs on) is within it."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if d.startswith("aiohttp")]
    cap = re.search(r"<\s*(\d+)\.(\d+)", spec)
    assert cap, f"aiohttp has no upper bound in pyproject.toml: {spec!r}"
    installed = tuple(int(part) for part in version("aiohttp").split(".")[:2])
    assert installed < (int(cap[1]), int(cap[2])), (installed, spec)
