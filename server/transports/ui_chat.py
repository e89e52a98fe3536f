"""The AI SDK chat routes (PROTOCOL.md §11): POST /api/chat, GET /api/chat/{id}/stream,
POST /api/chat/{id}/cancel.

An answer is one more HTTP session of the manager whose id is the chat's id, streamed by
the SSE writer with the UI message stream encoder. A dropped request cancels it, unless the
body asked for ``on_disconnect: "detach"``: then the chat's running answer is remembered
here (by chat id, until it ends) so the stream route can resume it from its first event,
and the cancel route can stop it. The chat id is what lets a page re-attach, as in the AI
SDK's own resumable streams: ids must be unguessable (the SDK's generated ones are).

With a shared store the answer is also indexed there by its chat id (to its token's hash
and its message id, never to the token), so the stream route of any node resumes it by
relaying its shared log, and the cancel route of any node stops it.
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
from server.sessions.manager import Resumed, SessionManager
from server.sessions.session import Session
from server.sessions.store import RemoteSession, SessionStore
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
        manager.index_chat(session, message_id)
    encoder = UiMessageStream(message_id, request.app[TALLIES].sse)
    return await channel.pump(request, session, encoder, UI_HEADERS)


async def handle_chat_stream(request: web.Request) -> web.StreamResponse:
    """GET /api/chat/{id}/stream: the running answer from its start, then live; else 204."""
    refused = refusal(request)
    if refused is not None:
        return refused
    bind_request_id(request)
    chat_id = request.match_info["chat_id"]
    manager = request.app[MANAGER]
    answer = request.app[ANSWERS].get(chat_id)
    channel = SseChannel(request)
    session: Resumed
    try:
        if answer is not None and answer.session.live and answer.session.resume_token:
            token = answer.session.resume_token
            resume = Resume(session=chat_id, resume_token=token, after_seq=-1)
            session = manager.http.resume(resume, channel.outbox)
            message_id = answer.message_id
        else:
            found = await _running_elsewhere(manager.store, chat_id)
            if found is None:
                return web.Response(status=204)
            remote, message_id = found
            session = manager.http.follow(remote, channel.outbox)
    except TokenmuxError as exc:
        return json_error(exc)
    encoder = UiMessageStream(message_id, request.app[TALLIES].sse)
    return await channel.pump(request, session, encoder, UI_HEADERS)


async def _running_elsewhere(store: SessionStore, chat_id: str) -> tuple[RemoteSession, str] | None:
    """The chat's newest detached answer if another node runs it, and its message id. The
    chat id alone authorizes it, as on this node. Indexed by its token's hash, the answer
    is that one session: an older answer of the chat ending elsewhere changes nothing."""
    if not store.distributed:
        return None
    answer = await store.chat_answer(chat_id)
    if answer is None:
        return None
    remote = await store.find(chat_id, answer.key)
    if remote is None or remote.ended or remote.node == store.node:
        return None  # this node knows its own answers without Redis
    return remote, answer.message_id


async def handle_chat_cancel(request: web.Request) -> web.Response:
    """POST /api/chat/{id}/cancel: stop the chat's running answer (202), if any (200).

    The answer may be detached here, still attached to its request here, relayed here, or
    (with a shared store) running on another node, which is told. Only a live answer or
    relay here settles it without the store: an answer that ended here, or a relay whose
    reader left, says nothing of a newer answer elsewhere."""
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
            running = False
        if not running:
            try:
                running = await _cancel_elsewhere(manager, chat_id)
            except TokenmuxError as exc:
                return json_error(exc)
    status = "cancelling" if running else "not_running"
    return json_response({"chat_id": chat_id, "status": status}, 202 if running else 200)


async def _cancel_elsewhere(manager: SessionManager, chat_id: str) -> bool:
    """Tell the node running the chat's answer to cancel it: True when one was told."""
    found = await _running_elsewhere(manager.store, chat_id)
    if found is not None:
        remote, _ = found
        if not remote.owner_alive:
            return False  # its node died with it
        manager.cancel_elsewhere(remote)
        return True
    # Not a detached answer (those are indexed): one attached to its request elsewhere.
    return bool(await manager.cancel_remote_http(chat_id))


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
