"""Reference: the naive loop most people write, with nothing that yields to the event loop.

    python bench/refs/naive_aiohttp.py PORT

GET /ws: each ``start`` runs one task that takes its tokens from a plain (synchronous)
iterator and sends every event with ``await ws.send_str(json.dumps(event))``. aiohttp only
suspends a send when the transport is paused, so each reply goes out whole before another
session gets a turn: the cheapest possible loop per event, and the least fair one.
POST /api/stream: the same with ``await response.write(...)`` per event, then
``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aiohttp import WSMsgType, web

from bench.refs.source import cancelled_end, sync_envelopes


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("tokenmux.v1.json",), compress=False)
    await ws.prepare(request)
    await ws.send_str(json.dumps({"type": "ready", "timestamp": 0, "data": {}}))
    tasks: dict[str, asyncio.Task[None]] = {}

    async def stream(session: str, data: dict[str, Any]) -> None:
        seq = 0
        try:
            for event in sync_envelopes(session, data["prompt"], data.get("params", {})):
                seq = event["seq"] + 1
                await ws.send_str(json.dumps(event))
        except asyncio.CancelledError:
            await ws.send_str(json.dumps(cancelled_end(session, seq)))
        finally:
            tasks.pop(session, None)

    async for message in ws:
        if message.type is not WSMsgType.TEXT:
            break
        msg = json.loads(message.data)
        if msg["type"] == "start":
            tasks[msg["session"]] = asyncio.create_task(stream(msg["session"], msg["data"]))
        elif msg["type"] == "cancel" and msg["session"] in tasks:
            tasks[msg["session"]].cancel()
    for task in list(tasks.values()):
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    return ws


async def sse(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    session = body.get("session_id", "s")
    for event in sync_envelopes(session, body["prompt"], body.get("llm_params", {})):
        await response.write(f"data: {json.dumps(event)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_post("/api/stream", sse)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
