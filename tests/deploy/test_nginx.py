"""deploy/nginx.conf in front of a real server: SSE unbuffered, WebSocket multiplexing."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from server.app import RunningServer
from server.logs import ContextFilter
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory, Starter
from tests.deploy.nginx import NGINX_CONF, find_nginx, render_config, run_nginx

NGINX = find_nginx()
if NGINX is None:
    if os.environ.get("CI"):
        raise RuntimeError("nginx is missing: `make test` installs it (apt-get install nginx)")
    pytest.skip("nginx is not installed (make test installs it)", allow_module_level=True)


@pytest.fixture
async def proxied(start: Starter, make_config: ConfigFactory, tmp_path: Path) -> AsyncIterator[str]:
    """A tokenmux server (simulator at 20 tokens/s) behind nginx; yields nginx's URL."""
    server: RunningServer = await start(
        make_config(providers={"sim": {"params": {"tokens_per_second": 20}}})
    )
    assert NGINX is not None
    async with run_nginx(NGINX, tmp_path, server.url.removeprefix("http://")) as url:
        yield url


def test_the_shipped_config_has_every_line_the_tests_rewrite(tmp_path: Path) -> None:
    """Renaming a marked line in deploy/nginx.conf fails here, not in a confusing way."""
    config = render_config(
        NGINX_CONF.read_text(), prefix=tmp_path, listen="127.0.0.1:1", upstream="127.0.0.1:2"
    )
    assert "proxy_buffering off;" in config and "$connection_upgrade" in config


async def test_sse_chunks_pass_through_as_they_are_produced(proxied: str) -> None:
    """Each chunk reaches the client while later ones are still being generated."""
    body = {"prompt": "go", "llm_params": {"max_tokens": 9}}
    arrivals: list[tuple[float, dict[str, object]]] = []
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{proxied}/api/stream", json=body) as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        lines = [line async for line in _timed_lines(r, arrivals)]
    assert lines[-1] == b"data: [DONE]"
    chunks = [(t, e) for t, e in arrivals if e["type"] == "content_chunk"]
    assert len(chunks) == 10
    # 10 tokens at 20/s span ~450 ms. Buffered, the first would arrive with the last.
    first_arrival_ms = chunks[0][0] * 1000
    last_produced_ms = chunks[-1][1]["timestamp"]
    assert isinstance(last_produced_ms, int)
    assert first_arrival_ms < last_produced_ms - 200, (first_arrival_ms, last_produced_ms)


async def _timed_lines(
    response: aiohttp.ClientResponse, arrivals: list[tuple[float, dict[str, object]]]
) -> AsyncIterator[bytes]:
    async for raw in response.content:
        line = raw.rstrip(b"\n")
        if line.startswith(b"data: {"):
            arrivals.append((time.time(), orjson.loads(line[6:])))
        if line:
            yield line


async def test_websocket_multiplexing_through_nginx(proxied: str) -> None:
    """Upgrade passes through; five sessions interleave on one socket and all complete."""
    client = await WsClient.connect(proxied)
    ready = await client.receive()
    assert ready["type"] == "ready"
    ids = {f"s{i}" for i in range(5)}
    for sid in sorted(ids):
        await client.start(sid, params={"max_tokens": 6, "tokens_per_second": 100})
    await client.until_ended(ids)
    for sid in ids:
        assert check_session(client.events[sid])["reason"] == "complete"
    await client.close()


async def test_nginx_request_id_is_on_the_server_log_lines(
    proxied: str, caplog: pytest.LogCaptureFixture
) -> None:
    """nginx's $request_id travels as X-Request-Id and tags the session's log lines."""
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO, logger="server.sessions.session")
    client = await WsClient.connect(proxied)
    await client.start("s1", params={"max_tokens": 1, "tokens_per_second": 0})
    await client.until_ended({"s1"})
    await client.close()
    (record,) = [r for r in caplog.records if r.name == "server.sessions.session"]
    assert re.fullmatch(r"[0-9a-f]{32}", record.request_id), record.request_id  # type: ignore[attr-defined]
