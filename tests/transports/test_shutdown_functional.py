"""Graceful shutdown under load: goaway, drain, stream_end{shutdown}, 1001, bounded time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from websockets.exceptions import ConnectionClosed

from server.app import RunningServer
from server.config import Config
from tests._client import WsClient, check_session
from tests._rawws import RawWebSocket
from tests._sse import parse_sse
from tests.conftest import ConfigFactory


async def test_shutdown_drains_then_ends_the_rest_and_closes_1001(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server: RunningServer = await start(
        make_config(server={"drain_s": 0.5, "shutdown_timeout_s": 4}, limits={"send_timeout_s": 1})
    )
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("long", params={"hang_at": 3})
    await client.start("quick", params={"max_tokens": 30, "tokens_per_second": 150})
    stalled = await RawWebSocket.connect(server.url)
    for i in range(5):
        message = {
            "type": "start",
            "session": f"f{i}",
            "data": {"prompt": "x" * 1000, "params": {"max_tokens": 1_000_000}},
        }
        await stalled.send_text(json.dumps(message))
    http = aiohttp.ClientSession()
    sse = await http.post(
        server.url + "/api/stream", json={"prompt": "x", "llm_params": {"hang_at": 1}}
    )
    await sse.content.readuntil(b'"content_chunk"')
    await client.receive_until(lambda e: e.get("session") == "long" and e["seq"] == 3)

    began = time.monotonic()
    stopping = asyncio.create_task(server.aclose())
    goaway = await client.receive_until(lambda e: e["type"] == "goaway")
    assert goaway["data"] == {"reason": "shutdown", "drain_ms": 500}
    await client.start("late")
    refused = await client.connection_event()
    assert refused["data"]["code"] == "shutting_down" and refused["data"]["retryable"] is True
    try:
        while True:
            await client.receive()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1001
    await asyncio.wait_for(stopping, 10)
    elapsed = time.monotonic() - began

    assert check_session(client.events["quick"])["reason"] == "complete"  # finished in the drain
    assert check_session(client.events["long"])["reason"] == "shutdown"
    events, _ = parse_sse(b'data: {"type":"content_chunk"' + await sse.read())
    assert events[-1]["data"]["reason"] == "shutdown"
    await http.close()
    stalled.abort()
    assert elapsed < 0.5 + 4 + 2, elapsed  # drain + close bound, with a non-reader present
