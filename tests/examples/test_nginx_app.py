"""deploy/nginx-app.conf: one origin, /ws and /api/stream to tokenmux, the rest to the app."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from tests._sse import parse_sse
from tests.deploy.nginx import NGINX_APP_CONF, find_nginx, render_config, run_nginx
from tests.examples.conftest import LONG, MODEL, Backend, read_events, run_app, uvicorn
from tests.providers.upstream import Reply
from tokenmux import Client

NGINX = find_nginx()
if NGINX is None:
    if os.environ.get("CI"):
        raise RuntimeError("nginx is missing: `make test` installs it (apt-get install nginx)")
    pytest.skip("nginx is not installed (make test installs it)", allow_module_level=True)


def test_the_app_config_has_every_line_the_tests_rewrite(tmp_path: Path) -> None:
    config = render_config(
        NGINX_APP_CONF.read_text(), prefix=tmp_path, listen="127.0.0.1:1",
        upstream="127.0.0.1:2", app="127.0.0.1:3",
    )  # fmt: skip
    assert "server 127.0.0.1:3;" in config and "location = /api/stream" in config


async def test_one_origin_serves_the_app_and_tokenmux(backend: Backend, tmp_path: Path) -> None:
    """Through nginx: the app's own route, tokenmux's WebSocket, and /api/stream with its
    text, a dropped request that cancels the upstream one, and a provider error."""
    assert NGINX is not None
    upstream = backend.upstream
    argv, env = uvicorn("examples.fastapi_app.app:app", backend)
    async with (
        run_app(argv, env=env) as app_url,
        run_nginx(
            NGINX, tmp_path, backend.server.url.removeprefix("http://"),
            conf=NGINX_APP_CONF, app=app_url.removeprefix("http://"),
        ) as url,
        aiohttp.ClientSession() as http,
    ):  # fmt: skip
        upstream.plan(MODEL, Reply(text="From the app route."))
        async with http.get(f"{url}/chat", params={"prompt": "app"}) as response:
            events = await read_events(response)
        assert "".join(d["text"] for n, d in events if n == "text") == "From the app route."

        upstream.plan(MODEL, Reply(text="Over the socket."))
        async with Client(url) as client:
            session = await client.start(prompt="ws")
            assert await session.text() == "Over the socket."

        upstream.plan(MODEL, Reply(text="Over SSE."), LONG, Reply(status=400))
        async with http.post(f"{url}/api/stream", json={"prompt": "sse"}) as response:
            sse, _ = parse_sse(await response.read())
        text = "".join(e["data"]["content"] for e in sse if e["type"] == "content_chunk")
        assert text == "Over SSE." and sse[-1]["data"]["reason"] == "complete"

        async with http.post(f"{url}/api/stream", json={"prompt": "leave"}) as response:
            while b"content_chunk" not in await response.content.readuntil(b"\n\n"):
                pass
            response.close()  # the browser goes away mid-stream
        dropped = await upstream.wait_for_request(MODEL, 4)
        async with asyncio.timeout(5):
            await dropped.disconnected.wait()

        async with http.post(f"{url}/api/stream", json={"prompt": "fail"}) as response:
            sse, _ = parse_sse(await response.read())
        (error,) = [e["data"] for e in sse if e["type"] == "error"]
        assert error["code"] == "provider_error" and sse[-1]["data"]["reason"] == "error"
