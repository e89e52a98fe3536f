"""`tokenmux serve` on uvloop (the default when installed): WS and SSE end to end.

uvloop's transports are not asyncio.Transport subclasses, so code that checks for that
type silently misbehaves there; this runs the real CLI in a subprocess to catch it.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests._client import WsClient, check_session

pytest.importorskip("uvloop")

CONFIG = """\
server: {host: 127.0.0.1, port: 0, log_level: INFO}
providers:
  default: sim
  sim: {type: sim, model: sim-1, params: {tokens_per_second: 0, ttft_ms: 0}}
"""


@pytest.fixture
async def uvloop_server(tmp_path: Path) -> AsyncIterator[str]:
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_text, CONFIG)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--config", str(config), "--loop", "uvloop",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, "the server exited before listening"
                if found := re.search(r"listening on (http://\S+) .*loop: uvloop", line):
                    break
        yield found.group(1)
    finally:
        proc.terminate()
        await proc.communicate()


async def test_sse_and_websocket_on_uvloop(uvloop_server: str) -> None:
    body = {"prompt": "go", "llm_params": {"max_tokens": 20}}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{uvloop_server}/api/stream", json=body) as response,
    ):
        text = await response.text()
    assert text.count('"type":"content_chunk"') == 21 and text.endswith("data: [DONE]\n\n")

    client = await WsClient.connect(uvloop_server)
    for i in range(5):
        await client.start(f"s{i}", params={"max_tokens": 30})
    await client.until_ended({f"s{i}" for i in range(5)})
    for i in range(5):
        assert check_session(client.events[f"s{i}"])["reason"] == "complete"
    await client.close()
