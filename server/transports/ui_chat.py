"""The AI SDK chat routes (PROTOCOL.md §11): POST /api/chat, GET /api/chat/{id}/stream,
POST /api/chat/{id}/cancel.

An answer is one more HTTP session of the manager whose id is the chat's id, streamed by
the SSE writer with the UI message stream encoder. A dropped request cancels it, unless the
body asked for ``on_disconnect: "detach"``: then the chat's running answer is remembered
here (by chat id, until it ends) so the stream route can resume it from its first event,
and the cancel route can stop it. The chat id is what lets a page re-attach, as in the AI
SDK's own resumable streams: ids must be unguessable (the SDK's generated ones are).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from server.errors import SessionError, TokenmuxError
from server.logs import bind_request_id
from server.protocol.envelope import Resume
from server.protocol.ui_encoder import UI_STREAM_HEADER, UiMessageStream
from server.protocol.ui_request import ui_chat_body
from server.sessions.session import Session
from server.state import MANAGER, TALLIES
from server.transports.access import checked, refusal
from server.transports.http_common import json_error, json_response, parse_start, read_json
from server.transports.sse import SSE_HEADERS, SseChannel

__all__ = ["add_ui_chat_routes"]

UI_HEADERS = {**SSE_HEADERS, UI_STREAM_HEADER[0]: UI_STREAM_HEADER[1]}


@dataclass(frozen=True, slots=True)
class _Answer:
    session: Session
    message_id: str


class _Answers(dict[str, _Answer]):
    """The detachable answers still running, by chat id."""

    def forget(self, session: Session) -> None:
        answer = self.get(session.id)
        if answer is not None and answer.session is session:
            del self[session.id]


ANSWERS = web.AppKey("ui_chat_answers", _Answers)


async def handle_chat(request: web.Request) -> web.StreamResponse:
    """POST /api/chat: answer the chat's messages as a UI message stream."""
    refused = refusal(request)
    if refused is not None:
        return refused
    bind_request_id(request)
    manager = request.app[MANAGER]
    channel = SseChannel(request)
    try:
        chat = ui_chat_body(await read_json(request))
        start = parse_start(request, chat.body)
        session = manager.http.start(start, channel.outbox)
    except TokenmuxError as exc:
        return json_error(exc)
    message_id = chat.message_id or f"msg-{uuid.uuid4().hex}"
    if manager.may_detach(session):
        request.app[ANSWERS][chat.chat_id] = _Answer(session, message_id)
    encoder = UiMessageStream(message_id, request.app[TALLIES].sse)
    return await channel.pump(request, session, encoder, UI_HEADERS)


async def handle_chat_stream(request: web.Request) -> web.StreamResponse:
    """GET /api/chat/{id}/stream: the running answer from its start, then live; else 204."""
    refused = refusal(request)
    if refused is not None:
        return refused
    bind_request_id(request)
    chat_id = request.match_info["chat_id"]
    answer = request.app[ANSWERS].get(chat_id)
    if answer is None or not answer.session.live or answer.session.resume_token is None:
        return web.Response(status=204)
    channel = SseChannel(request)
    resume = Resume(session=chat_id, resume_token=answer.session.resume_token, after_seq=-1)
    try:
        session = request.app[MANAGER].http.resume(resume, channel.outbox)
    except TokenmuxError as exc:
        return json_error(exc)
    encoder = UiMessageStream(answer.message_id, request.app[TALLIES].sse)
    return await channel.pump(request, session, encoder, UI_HEADERS)


async def handle_chat_cancel(request: web.Request) -> web.Response:
    """POST /api/chat/{id}/cancel: stop the chat's running answer (202), if any (200).

    The answer may be detached here, still attached to its request here, or (with a
    shared store) running on another node, which is told."""
    chat_id = request.match_info["chat_id"]
    manager = request.app[MANAGER]
    answer = request.app[ANSWERS].get(chat_id)
    if answer is not None and answer.session.live:
        answer.session.cancel()
        running = True
    else:
        try:
            running = manager.http.cancel(chat_id)
        except SessionError:
            running = bool(await manager.cancel_remote_http(chat_id))
    status = "cancelling" if running else "not_running"
    return json_response({"chat_id": chat_id, "status": status}, 202 if running else 200)


async def _answers(app: web.Application) -> AsyncIterator[None]:
    answers = app[ANSWERS] = _Answers()
    app[MANAGER].on_session_end(answers.forget)
    yield
    answers.clear()


def add_ui_chat_routes(app: web.Application) -> None:
    """Call after the session manager's cleanup context is appended (it needs the manager)."""
    app.cleanup_ctx.append(_answers)
    app.router.add_post("/api/chat", handle_chat)
    app.router.add_get("/api/chat/{chat_id}/stream", handle_chat_stream)
    app.router.add_post("/api/chat/{chat_id}/cancel", checked(handle_chat_cancel))
