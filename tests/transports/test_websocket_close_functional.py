"""A client that closes its socket while the server streams to it fast: the connection's
writer task is cancelled and awaited every time (the conftest fails any test whose loop
destroys a pending task)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.app import RunningServer
from server.sessions.manager import SessionScope
from server.state import CONNECTIONS, MANAGER
from server.transports.websocket import WsConnection
from tests._client import WsClient
from tests.conftest import ConfigFactory

FAST = {"max_tokens": 2000, "tokens_per_second": 200}


async def close_while_streaming(url: str, sid: str, *, clean: bool) -> None:
    client = await WsClient.connect(url)
    await client.receive()  # ready
    await client.start(sid, params=FAST)
    await client.receive_until(lambda e: e["type"] == "content_chunk" and e["seq"] >= 3)
    if clean:
        await client.close()  # a close handshake, while chunks keep coming
    else:
        client.ws.transport.abort()


async def test_closing_a_socket_mid_stream_leaves_no_orphaned_writer(
    start: Any, make_config: ConfigFactory
) -> None:
    server: RunningServer = await start(make_config())
    for round_ in range(4):
        await asyncio.gather(
            *(
                close_while_streaming(server.url, f"s{round_}-{i}", clean=i % 4 != 0)
                for i in range(8)
            )
        )
    # Every handler has finished its cleanup before the loop is checked (at teardown).
    connections, manager = server.app[CONNECTIONS], server.app[MANAGER]
    async with asyncio.timeout(5):
        while connections or manager.live_sessions:  # noqa: ASYNC110 - server-side state
            await asyncio.sleep(0.01)


async def test_a_handler_cancelled_while_it_closes_its_sessions_still_stops_its_writer(
    start: Any, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving forced: the client's close frame ends the reader loop, and its TCP
    connection drops while the handler is still closing its sessions, so aiohttp cancels
    the handler right there. The sessions and the writer task are ended all the same."""
    server: RunningServer = await start(make_config())
    closing, gone = asyncio.Event(), asyncio.Event()
    close_scope = SessionScope.close

    async def close_after_the_client_is_gone(
        scope: SessionScope, reason: Any = "cancelled"
    ) -> None:
        if scope is not server.app[MANAGER].http:
            closing.set()
            await gone.wait()
        await close_scope(scope, reason)

    monkeypatch.setattr(SessionScope, "close", close_after_the_client_is_gone)
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params=FAST)
    await client.receive_until(lambda e: e["type"] == "content_chunk")
    (connection,) = server.app[CONNECTIONS]
    assert isinstance(connection, WsConnection)
    transport = connection._transport
    assert transport is not None
    handshake = asyncio.create_task(client.ws.close())  # waits for the server's TCP close
    await closing.wait()
    client.ws.transport.abort()
    async with asyncio.timeout(5):
        while not transport.is_closing():  # noqa: ASYNC110 - aiohttp's state
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # connection_lost has cancelled the handler
    gone.set()
    await handshake
    manager = server.app[MANAGER]
    async with asyncio.timeout(5):
        while server.app[CONNECTIONS] or manager.live_sessions:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
