"""No secret reaches a log: every way of presenting a token, at log level DEBUG.

The server runs as a child process with ``log_level: DEBUG``; every auth path (a right and
a wrong token, in a header and in a subprotocol, on every route) is exercised, then all
of its output is searched for the tokens and for a session's resume token.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from server.protocol.codec import CODECS, JSON_SUBPROTOCOL
from tests._process import spawn_server
from tests._sse import open_detached_sse

TOKEN = "tmx-LEAKCHECK-2f9c1d7e4b8a"
WRONG = "tmx-WRONGTOKEN-77aa66bb55cc"
CONFIG = f"""
server: {{log_level: DEBUG, drain_s: 0, shutdown_timeout_s: 2}}
auth: {{tokens: ["{TOKEN}"]}}
providers:
  sim: {{type: sim, params: {{tokens_per_second: 0}}}}
"""


async def _ws_round_trip(
    http: aiohttp.ClientSession, url: str, protocols: tuple[str, ...], headers: dict[str, str]
) -> None:
    async with http.ws_connect(url + "/ws", protocols=protocols, headers=headers) as ws:
        codec = CODECS[ws.protocol or JSON_SUBPROTOCOL]

        async def receive() -> Any:
            return codec.decode((await ws.receive()).data)

        assert (await receive())["type"] == "ready"
        start = {"type": "start", "session": "s", "data": {"prompt": "hi"}}
        await (ws.send_bytes(msgpack.packb(start)) if codec.binary else ws.send_json(start))
        while (await receive())["type"] != "stream_end":
            pass


async def _ws_refused(
    http: aiohttp.ClientSession,
    url: str,
    protocols: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> None:
    try:
        async with http.ws_connect(url + "/ws", protocols=protocols, headers=headers):
            raise AssertionError("a wrong token was accepted")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401


async def test_no_token_appears_in_any_log_line_at_debug(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_text, CONFIG)
    process, output, url = await spawn_server(config)
    good = {"Authorization": f"Bearer {TOKEN}"}
    bad = {"Authorization": f"Bearer {WRONG}"}
    try:
        async with aiohttp.ClientSession() as http:
            # WebSocket: the token alone as a subprotocol, beside a codec, and as a header.
            await _ws_round_trip(http, url, (f"bearer.{TOKEN}",), {})
            await _ws_round_trip(http, url, ("tokenmux.v1.json", f"bearer.{TOKEN}"), {})
            await _ws_round_trip(http, url, ("tokenmux.v1.msgpack", f"bearer.{TOKEN}"), {})
            await _ws_round_trip(http, url, (), good)
            await _ws_refused(http, url, protocols=(f"bearer.{WRONG}",))
            await _ws_refused(http, url, protocols=("tokenmux.v1.json", f"bearer.{WRONG}"))
            await _ws_refused(http, url, headers=bad)
            # HTTP routes, right and wrong token.
            body = {"prompt": "hi", "llm_params": {"max_tokens": 3}}
            for route in ("/api/stream", "/api/completion"):
                async with http.post(url + route, json=body, headers=good) as response:
                    assert response.status == 200
                    await response.read()
                async with http.post(url + route, json=body, headers=bad) as response:
                    assert response.status == 401
            async with http.post(url + "/api/sessions/x/cancel", headers=good) as response:
                assert response.status == 404
            async with http.post(url + "/api/sessions/x/cancel", headers=bad) as response:
                assert response.status == 401
            # A resumable session: its resume token is a secret too.
            http.headers.update(good)
            _, resume_token = await open_detached_sse(http, url, "r1")
            events = f"{url}/api/sessions/r1/events?resume_token={resume_token}"
            async with http.get(events) as response:
                assert response.status == 200
                await response.read()
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await process.wait()
        await output.wait_for("<eof>")
        await output.aclose()
    log = "\n".join(output.lines)
    assert " DEBUG " in log and "GET /ws 101" in log  # the lines were really written
    assert TOKEN not in log
    assert WRONG not in log
    assert resume_token not in log
