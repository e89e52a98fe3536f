"""A local upstream that speaks all five provider wire formats on one port.

Routes (the paths the official SDKs call, relative to the base URL each is given)::

    POST /{prefix}/chat/completions                      openai (and OpenAI-compatible)
    POST /{prefix}/responses                             openai_responses
    POST /v1/messages                                    anthropic
    POST /{v1,v1beta}/models/{model}:streamGenerateContent  gemini (?alt=sse)
    POST /api/chat                                       ollama

What each request gets is planned per model name: ``upstream.plan("m1", Reply(status=429),
Reply())`` answers the first request for model ``m1`` with a 429, the next with a stream; a
model with no plan left gets the default ``Reply()``. Every request is recorded, including
the moment the client went away mid-response (the handler is cancelled by aiohttp), so tests
can wait on that event instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.providers.wire import WIRES, Script, Wire

__all__ = ["Record", "Reply", "Upstream", "start_upstream"]


@dataclass(frozen=True)
class Reply:
    """How to answer one request. Chunk counts index the text deltas; with a ``script``
    (a rich reply: reasoning, calls, citations, refusals) they index its frames."""

    text: str = "Hello from the upstream."
    chunks: int = 3  # the text is split into this many deltas
    chunk_delay_s: float = 0.0  # before each delta
    header_delay_s: float = 0.0  # before the response headers
    status: int = 200  # not 200: an error answer with the provider's error body
    retry_after: str | None = None  # Retry-After header of an error answer
    error_after: int | None = None  # an in-stream error event after this many deltas
    drop_after: int | None = None  # abort the TCP connection after this many deltas
    hang_after: int | None = None  # go quiet after this many deltas until the client leaves
    truncate: bool = False  # end the body cleanly but without the final frame(s)
    input_tokens: int = 11
    output_tokens: int = 7
    script: Script | None = None

    def pieces(self) -> list[str]:
        size = -(-len(self.text) // self.chunks)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]


@dataclass
class Record:
    """One request as the upstream saw it."""

    wire: str
    path: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float
    disconnected_at: float | None = None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


class Upstream:
    """The app's state: plans per model and the record of requests."""

    def __init__(self) -> None:
        self.url = ""
        self.records: list[Record] = []
        self._plans: dict[str, deque[Reply]] = defaultdict(deque)
        self._recorded = asyncio.Condition()

    def plan(self, model: str, *replies: Reply) -> None:
        self._plans[model].extend(replies)

    def requests(self, model: str) -> list[Record]:
        return [r for r in self.records if r.model == model]

    async def wait_for_request(self, model: str, count: int = 1, within: float = 5) -> Record:
        """The ``count``-th request for ``model``, waiting for it to arrive."""
        async with asyncio.timeout(within), self._recorded:
            await self._recorded.wait_for(lambda: len(self.requests(model)) >= count)
        return self.requests(model)[count - 1]

    async def handle(self, request: web.Request, wire: Wire, model: str) -> web.StreamResponse:
        body = await request.json()
        loop = asyncio.get_running_loop()
        record = Record(wire.name, request.path, model, dict(request.headers), body, loop.time())
        async with self._recorded:
            self.records.append(record)
            self._recorded.notify_all()
        reply = self._plans[model].popleft() if self._plans[model] else Reply()
        try:
            return await _answer(request, wire, model, reply)
        except (asyncio.CancelledError, ConnectionError):
            record.disconnected_at = loop.time()
            record.disconnected.set()
            raise


async def _answer(request: web.Request, wire: Wire, model: str, reply: Reply) -> web.StreamResponse:
    await asyncio.sleep(reply.header_delay_s)
    if reply.status != 200:
        headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
        body = wire.error_body(reply.status, f"upstream answered {reply.status}")
        return web.json_response(body, status=reply.status, headers=headers)
    response = web.StreamResponse(headers={"Content-Type": wire.content_type})
    await response.prepare(request)
    if reply.script is not None:
        frames = wire.script(model, reply.script)
        return await _stream(request, response, wire, reply, [], frames, [])
    head = wire.head(model, reply.input_tokens)
    deltas = [wire.delta(model, piece) for piece in reply.pieces()]
    tail = wire.tail(model, reply.input_tokens, reply.output_tokens, reply.text)
    return await _stream(
        request, response, wire, reply, head, deltas, [] if reply.truncate else tail
    )


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    wire: Wire,
    reply: Reply,
    head: list[bytes],
    frames: list[bytes],
    tail: list[bytes],
) -> web.StreamResponse:
    """Write ``head``, then ``frames`` (the ones the failure knobs count), then ``tail``."""
    for frame in head:
        await response.write(frame)
    for i, frame in enumerate(frames):
        if i == reply.error_after:
            await response.write(wire.stream_error())
            return response
        if i == reply.drop_after:
            assert request.transport is not None
            request.transport.abort()
            return response
        if i == reply.hang_after:
            await asyncio.Event().wait()  # until the client goes and aiohttp cancels us
        await asyncio.sleep(reply.chunk_delay_s)
        await response.write(frame)
    for frame in tail:
        await response.write(frame)
    await response.write_eof()
    return response


def _app(upstream: Upstream) -> web.Application:
    async def openai(request: web.Request) -> web.StreamResponse:
        model = json.loads(await request.read())["model"]
        return await upstream.handle(request, WIRES["openai"], model)

    async def responses(request: web.Request) -> web.StreamResponse:
        model = json.loads(await request.read())["model"]
        return await upstream.handle(request, WIRES["openai_responses"], model)

    async def anthropic(request: web.Request) -> web.StreamResponse:
        model = json.loads(await request.read())["model"]
        return await upstream.handle(request, WIRES["anthropic"], model)

    async def gemini(request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["spec"].partition(":")
        assert method == "streamGenerateContent" and request.query.get("alt") == "sse"
        return await upstream.handle(request, WIRES["gemini"], model)

    async def ollama(request: web.Request) -> web.StreamResponse:
        model = json.loads(await request.read())["model"]
        return await upstream.handle(request, WIRES["ollama"], model)

    app = web.Application()
    app.router.add_post(r"/{prefix:.*}/chat/completions", openai)
    app.router.add_post(r"/{prefix:.*}/responses", responses)
    app.router.add_post("/v1/messages", anthropic)
    app.router.add_post(r"/{version:v1|v1beta}/models/{spec}", gemini)
    app.router.add_post("/api/chat", ollama)
    return app


async def start_upstream() -> tuple[Upstream, web.AppRunner]:
    """Serve a new Upstream on 127.0.0.1 (a free port); stop it with ``runner.cleanup()``."""
    upstream = Upstream()
    # handler_cancellation: a client that disconnects cancels its handler, which is how
    # the disconnect gets recorded.
    runner = web.AppRunner(_app(upstream), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    upstream.url = f"http://{host}:{port}"
    return upstream, runner
