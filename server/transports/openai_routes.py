"""The OpenAI-compatible routes (PROTOCOL.md §10): POST /v1/chat/completions, GET /v1/models.

Request parsing and the answer's bytes live in ``protocol/openai_request.py`` and
``protocol/openai_encoder.py``; here a completion is one more HTTP session of the manager
(limits, rate limits, deadlines, retries, metrics and cancel-on-disconnect as on
``/api/stream``), streamed by the SSE writer with the chunk encoder.
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from server.errors import TokenmuxError
from server.logs import bind_request_id
from server.protocol.openai_encoder import ChatCompletionChunks, chat_completion
from server.protocol.openai_request import chat_request_body
from server.sessions.outbox import CollectingSink
from server.state import MANAGER, TALLIES
from server.transports.access import checked, refusal
from server.transports.http_common import json_response, openai_error, parse_start, read_json
from server.transports.sse import SseChannel

__all__ = ["add_openai_routes"]


async def handle_chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions: streamed, or one ``chat.completion`` object."""
    refused = refusal(request)
    if refused is not None:
        return refused
    bind_request_id(request)
    manager = request.app[MANAGER]
    channel = SseChannel(request)
    session_id = uuid.uuid4().hex
    created = int(time.time())
    try:
        obj = await read_json(request)
        chat = chat_request_body(obj, manager.providers.names, session_id=session_id)
        start = parse_start(request, chat.body)
        if chat.stream:
            # Refusals happen here, before any byte of the stream is sent.
            session = manager.http.start(start, channel.outbox)
        else:
            sink = CollectingSink()
            session = manager.http.start(start, sink)
    except TokenmuxError as exc:
        return openai_error(exc)
    completion_id = f"chatcmpl-{session_id}"
    if chat.stream:
        encoder = ChatCompletionChunks(
            completion_id,
            created=created,
            include_usage=chat.include_usage,
            tally=request.app[TALLIES].sse,
        )
        return await channel.pump(request, session, encoder)
    try:
        await manager.http.wait(session)
    finally:
        manager.http.stop(session)  # the client went away: stop the provider too
    status, body = chat_completion(sink.events, completion_id, created=created)
    return json_response(body, status)


async def handle_models(request: web.Request) -> web.Response:
    """GET /v1/models: every served provider as ``provider`` and ``provider/model``."""
    providers = request.app[MANAGER].providers
    ids: list[str] = []
    for name in providers.names:
        ids += [name, f"{name}/{providers.get(name).default_model}"]
    models = [{"id": id_, "object": "model", "created": 0, "owned_by": "tokenmux"} for id_ in ids]
    return json_response({"object": "list", "data": models})


def add_openai_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", handle_chat_completions)
    app.router.add_get("/v1/models", checked(handle_models))
