"""SSE keep-alive: one app-wide timer pings quiet streams; busy streams are not pinged."""

from __future__ import annotations

import aiohttp

from server.app import RunningServer
from tests.conftest import ConfigFactory, Starter


async def test_a_quiet_stream_gets_ping_comments(
    start: Starter, make_config: ConfigFactory
) -> None:
    """A session that hangs after one token hears `: ping` until the client leaves."""
    server: RunningServer = await start(make_config(sse={"keepalive_s": 0.05}))
    body = {"prompt": "go", "llm_params": {"hang_at": 1}}
    seen: list[bytes] = []
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/api/stream", json=body) as response,
    ):
        async for line in response.content:
            seen.append(line)
            if seen.count(b": ping\n") == 2:
                break
    assert seen[0].startswith(b"data: {") and b"stream_start" in seen[0]
    assert any(b"content_chunk" in line for line in seen)
