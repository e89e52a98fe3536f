"""A writer that fails (here: an encoder that raises) ends the connection cleanly.

WebSocket: the socket closes with 1011, each of its sessions ends with ``error{internal}``
and ``stream_end{error}``, or is detached if it asked to be. SSE: the response is dropped
without its end (no ``[DONE]``, no last chunk) and the session ends the same way. The
failing encoder is injected through the writers' encoder parameter, on a real server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server.app import RunningServer, make_app, start_server
from server.metrics import TransportTally
from server.protocol.codec import CODECS, JSON_SUBPROTOCOL
from server.protocol.encoding import Encoder
from server.protocol.envelope import Envelope
from server.protocol.sse_data import SseDataEncoder
from server.sessions.session import Session
from server.state import CONFIG, MANAGER
from server.transports.http_common import read_start
from server.transports.sse import SseChannel
from server.transports.websocket import WsConnection
from tests._client import WsClient
from tests._wait import eventually
from tests.conftest import ConfigFactory


class EncoderBroke(Exception):
    pass


class FailsOnChunks:
    """Encodes like ``inner`` until a batch holds a content_chunk, then raises."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner

    def encode(self, batch: Sequence[Envelope]) -> bytes:
        if any(envelope["type"] == "content_chunk" for envelope in batch):
            raise EncoderBroke("cannot encode this")
        return self.inner.encode(batch)

    def finish(self) -> bytes:
        return self.inner.finish()


async def broken_websocket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(JSON_SUBPROTOCOL,))
    await ws.prepare(request)
    encoder = FailsOnChunks(CODECS[JSON_SUBPROTOCOL].encoder(TransportTally()))
    connection = WsConnection(
        ws,
        CODECS[JSON_SUBPROTOCOL],
        encoder,
        request.app[MANAGER],
        request.app[CONFIG],
        request.transport,
    )
    await connection.serve()
    return ws


async def broken_sse(request: web.Request) -> web.StreamResponse:
    channel = SseChannel(request)
    session = request.app[MANAGER].http.start(await read_start(request), channel.outbox)
    return await channel.pump(request, session, FailsOnChunks(SseDataEncoder(TransportTally())))


@pytest.fixture
async def broken(make_config: ConfigFactory) -> Any:
    servers: list[RunningServer] = []

    async def launch(**sections: Any) -> tuple[RunningServer, list[Session]]:
        config = make_config(**sections)
        app = make_app(config)
        app.router.add_get("/broken/ws", broken_websocket)
        app.router.add_post("/broken/stream", broken_sse)
        server = await start_server(config, app)
        servers.append(server)
        ended: list[Session] = []
        server.app[MANAGER].on_session_end(ended.append)
        return server, ended

    yield launch
    for server in servers:
        await server.aclose()


async def test_a_failing_websocket_writer_closes_1011_and_ends_its_sessions(broken: Any) -> None:
    server, ended = await broken()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.url + "/broken/ws", protocols=(JSON_SUBPROTOCOL,))
        ready = await ws.receive_json()
        assert ready["type"] == "ready"
        await ws.send_json({"type": "start", "session": "s1", "data": {"prompt": "hi"}})
        while not ws.closed:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
            assert message.json()["type"] != "content_chunk"  # the batch that broke: not sent
        assert ws.close_code == 1011
    await eventually(lambda: bool(ended))
    (session,) = ended
    assert session.end_reason == "error"
    assert session.tally.error_code == "internal"
    assert server.app[MANAGER].live_sessions == 0


async def test_a_detachable_session_outlives_a_failing_writer_and_resumes(broken: Any) -> None:
    server, ended = await broken(resume={"enabled": True, "grace_s": 30})
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.url + "/broken/ws", protocols=(JSON_SUBPROTOCOL,))
        await ws.receive_json()  # ready
        # The first token comes 100 ms in: stream_start (with the token) goes out alone.
        params = {"ttft_ms": 100, "tokens_per_second": 200, "max_tokens": 20}
        start = {"prompt": "hi", "on_disconnect": "detach", "params": params}
        await ws.send_json({"type": "start", "session": "s1", "data": start})
        stream_start = await ws.receive_json()
        assert stream_start["type"] == "stream_start"
        token = stream_start["data"]["resume_token"]
        message = await ws.receive()
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1011
    assert not ended  # detached, still running
    client = await WsClient.connect(server.url)
    try:
        await client.send({"type": "resume", "session": "s1",
                           "data": {"resume_token": token, "after_seq": 0}})  # fmt: skip
        end = await client.receive_until(lambda e: e["type"] == "stream_end")
    finally:
        await client.close()
    assert end["data"]["reason"] == "complete"
    chunks = [e for e in client.events["s1"] if e["type"] == "content_chunk"]
    assert [c["data"]["index"] for c in chunks] == list(range(len(chunks)))
    assert chunks[0]["seq"] == 1  # nothing the broken socket never sent is missing


async def test_a_failing_sse_writer_drops_the_stream_and_ends_the_session(broken: Any) -> None:
    server, ended = await broken()
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.url + "/broken/stream", json={"prompt": "hi"})
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    await eventually(lambda: bool(ended))
    (session,) = ended
    assert session.end_reason == "error"
    assert session.tally.error_code == "internal"
