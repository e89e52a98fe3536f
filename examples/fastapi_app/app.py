"""A FastAPI app that streams answers from tokenmux as its own server-sent events.

``GET /chat?prompt=...`` starts one tokenmux session and relays it to the browser as
``event: text`` / ``error`` / ``end`` blocks. The app keeps one tokenmux ``Client`` (one
WebSocket) for all its requests; each request is one session on it. When the browser goes
away, Starlette cancels the response and the session is cancelled on the tokenmux server,
which aborts the provider request: nobody pays for tokens no one reads.

    TOKENMUX_URL=http://127.0.0.1:8080 uvicorn examples.fastapi_app.app:app --port 8000
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tokenmux import Client, ContentChunk, ErrorEvent, Session, StreamEnd, TokenmuxError


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("TOKENMUX_URL", "http://127.0.0.1:8080")
    async with Client(url, token=os.environ.get("TOKENMUX_TOKEN")) as client:
        app.state.tokenmux = client
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/chat")
async def chat(prompt: str) -> Response:
    client: Client = app.state.tokenmux
    try:
        session = await client.start(prompt=prompt)
    except TokenmuxError as exc:  # refused before it began: rate limited, bad request, ...
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=502)
    return StreamingResponse(
        relay(session),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def relay(session: Session) -> AsyncIterator[str]:
    """The session's text, its error if it fails, and how it ended, as SSE blocks."""
    try:
        async for event in session:
            if isinstance(event, ContentChunk):
                yield sse("text", {"text": event.content})
            elif isinstance(event, ErrorEvent):
                yield sse("error", {"code": event.code, "message": event.message})
            elif isinstance(event, StreamEnd):
                yield sse("end", {"reason": event.reason})
    finally:
        if not session.ended:  # the browser went away: stop the generation upstream
            # Starlette's cancellation is level-triggered (anyio): shield the cancel's await.
            with anyio.CancelScope(shield=True):
                await session.cancel()


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
