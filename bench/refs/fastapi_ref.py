"""Reference: FastAPI StreamingResponse on plain uvicorn (asyncio loop, h11).

    python bench/refs/fastapi_ref.py PORT

POST /api/stream yields ``data: <json.dumps(event)>\\n\\n`` per event, then ``data: [DONE]``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from bench.refs.source import envelopes

app = FastAPI()


@app.post("/api/stream")
async def stream(request: Request) -> StreamingResponse:
    body: dict[str, Any] = await request.json()

    async def events() -> AsyncIterator[str]:
        session = body.get("session_id", "s")
        async for event in envelopes(session, body["prompt"], body.get("llm_params", {})):
            yield f"data: {json.dumps(event)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    # "Plain" uvicorn: no uvloop, no httptools, even when they are installed.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="asyncio",
        http="h11",
        access_log=False,
        log_level="warning",
    )
