"""Cancelling a session closes the upstream HTTP connection, for every provider and every
way a session can be cancelled; the local upstream records the moment the client hung up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from server.app import RunningServer
from server.config import Config
from server.protocol.validate import MAX_CHUNK_DELAY_MS
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory
from tests.providers.conftest import KINDS, entry
from tests.providers.upstream import Record, Reply, Upstream

Start = Callable[[Config], Any]

DEADLINE_S = 1.0  # the upstream must see the disconnect this soon after the cancel


async def cancel_over_websocket(server: RunningServer, close_socket: bool) -> float:
    """Start a session, cancel it after its first chunk; the loop time of the cancel."""
    client = await WsClient.connect(server.url)
    await client.start("s1", provider="p")
    await client.receive_until(lambda e: e["type"] == "content_chunk")
    cancelled_at = asyncio.get_running_loop().time()
    if close_socket:
        await client.close()
        return cancelled_at
    await client.cancel("s1")
    await client.until_ended({"s1"})
    assert check_session(client.events["s1"])["reason"] == "cancelled"
    await client.close()
    return cancelled_at


async def cancel_over_sse(server: RunningServer) -> float:
    """Start an SSE stream and drop the HTTP connection after its first chunk."""
    async with aiohttp.ClientSession() as http:
        body = {"prompt": "Hello", "provider": "p"}
        response = await http.post(server.url + "/api/stream", json=body)
        async for line in response.content:
            if b'"content_chunk"' in line:
                break
        cancelled_at = asyncio.get_running_loop().time()
        response.close()
    return cancelled_at


async def assert_hung_up(record: Record, cancelled_at: float) -> float:
    async with asyncio.timeout(DEADLINE_S):
        await record.disconnected.wait()
    assert record.disconnected_at is not None
    latency = record.disconnected_at - cancelled_at
    assert 0 <= latency < DEADLINE_S
    return latency


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["ws-cancel", "ws-close", "sse-disconnect"])
async def test_cancel_closes_the_upstream_connection(
    kind: str, how: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """Mid-stream (upstream waiting to send more), cancel -> upstream disconnect < 1 s."""
    server: RunningServer = await start(make_config(providers={"p": entry(kind, upstream, "m1")}))
    upstream.plan("m1", Reply(hang_after=1))
    if how == "sse-disconnect":
        cancelled_at = await cancel_over_sse(server)
    else:
        cancelled_at = await cancel_over_websocket(server, close_socket=how == "ws-close")
    await assert_hung_up(upstream.requests("m1")[0], cancelled_at)


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_before_the_response_headers_closes_the_request(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """Cancelled while the upstream still thinks (no headers yet): the request is dropped."""
    server: RunningServer = await start(make_config(providers={"p": entry(kind, upstream, "m1")}))
    upstream.plan("m1", Reply(header_delay_s=30))
    client = await WsClient.connect(server.url)
    await client.start("s1", provider="p")
    record = await upstream.wait_for_request("m1")
    cancelled_at = asyncio.get_running_loop().time()
    await client.cancel("s1")
    await client.until_ended({"s1"})
    assert check_session(client.events["s1"])["reason"] == "cancelled"
    await assert_hung_up(record, cancelled_at)
    await client.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_while_the_session_paces_chunks_closes_the_upstream(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """With chunk_delay_ms the cancel lands in the session's own sleep, not in the
    provider's read: closing the provider's stream must still hang up the upstream."""
    server: RunningServer = await start(make_config(providers={"p": entry(kind, upstream, "m1")}))
    upstream.plan("m1", Reply(hang_after=2))
    client = await WsClient.connect(server.url)
    await client.start("s1", provider="p", chunk_delay_ms=MAX_CHUNK_DELAY_MS)
    await client.receive_until(lambda e: e["type"] == "content_chunk")
    cancelled_at = asyncio.get_running_loop().time()
    await client.cancel("s1")
    await client.until_ended({"s1"})
    await assert_hung_up(upstream.requests("m1")[0], cancelled_at)
    await client.close()
