"""The same adapters behind the SSE transport (POST /api/stream), read with aiohttp."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from server.app import RunningServer
from server.config import Config
from tests._client import check_session
from tests.conftest import ConfigFactory
from tests.providers.conftest import KINDS, entry, usage_details
from tests.providers.upstream import Reply, Upstream

Start = Callable[[Config], Any]


async def post_stream(server: RunningServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event of one SSE stream, up to `data: [DONE]`."""
    events: list[dict[str, Any]] = []
    url = server.url + "/api/stream"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: [DONE]"):
                return events
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
    raise AssertionError("the stream ended without [DONE]")


@pytest.mark.parametrize("kind", KINDS)
async def test_sse_streams_the_fallbacks_text_with_its_metadata(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """The primary is rate limited past the Retry-After cap; the fallback answers."""
    primary = entry(kind, upstream, "busy", retry_after_max_s=1, fallbacks=["backup"])
    providers = {"main": primary, "backup": entry(kind, upstream, "free")}
    server: RunningServer = await start(make_config(providers=providers))
    upstream.plan("busy", Reply(status=429, retry_after="120"))
    upstream.plan("free", Reply(text="served over SSE", output_tokens=4))
    events = await post_stream(server, {"prompt": "hi", "provider": "main"})
    end = check_session(events)
    assert end["reason"] == "complete" and end["text"] == "served over SSE"
    metadata = [e["data"] for e in events if e["type"] == "metadata"]
    assert metadata[0]["provider"] == "backup" and metadata[0]["fallback_from"] == "main"
    usage = {"input_tokens": 11, "output_tokens": 4} | usage_details(kind)
    assert metadata[-1]["usage"] == usage
    assert len(upstream.requests("busy")) == 1
