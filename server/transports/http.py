"""Plain HTTP routes: /api/completion, /api/sessions/{id}/cancel, /healthz."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import __version__
from server.errors import ErrorCode, SessionError, TokenmuxError, http_status
from server.logs import bind_request_id
from server.sessions.outbox import CollectingSink
from server.state import CONNECTIONS, MANAGER
from server.transports.http_common import json_error, json_response, read_start

__all__ = ["handle_cancel", "handle_completion", "handle_health"]


async def handle_completion(request: web.Request) -> web.Response:
    """POST /api/completion: the same request as /api/stream, answered in one piece."""
    bind_request_id(request)
    try:
        start = await read_start(request)
        scope = request.app[MANAGER].http
        sink = CollectingSink()
        session = scope.start(start, sink)
    except TokenmuxError as exc:
        return json_error(exc)
    try:
        await scope.wait(session)
    finally:
        scope.stop(session)  # the client went away: stop the provider too
    end = sink.events[-1]["data"]
    if end["reason"] == "error":
        payload = sink.events[-2]["data"]
        error = {"error": {"code": payload["code"], "message": payload["message"]}}
        return json_response(error, http_status(ErrorCode(payload["code"])))
    if end["reason"] in _FAILED_ENDS:
        return json_error(
            TokenmuxError("the session did not finish", code=_FAILED_ENDS[end["reason"]])
        )
    # complete, or cancelled through /api/sessions/{id}/cancel: the text so far is the answer.
    body: dict[str, Any] = {
        "content": session.stream.text(),
        "usage": end["usage"],
        "provider": session.provider.name,
        "model": session.model,
        "session_id": session.id,
        "reason": end["reason"],
    }
    # PROTOCOL.md section 9: the reasoning and the parsed tool calls, as content_complete
    # carries them.
    done: dict[str, Any] = next(
        (e["data"] for e in sink.events if e["type"] == "content_complete"), {}
    )
    body |= {key: done[key] for key in ("reasoning", "tool_calls") if key in done}
    return json_response(body)


_FAILED_ENDS = {"timeout": ErrorCode.TIMEOUT, "shutdown": ErrorCode.SHUTTING_DOWN}


async def handle_cancel(request: web.Request) -> web.Response:
    """POST /api/sessions/{session_id}/cancel: cancel a running SSE/HTTP session."""
    session_id = request.match_info["session_id"]
    manager = request.app[MANAGER]
    try:
        cancelled = manager.cancel_http(session_id)
    except SessionError:
        # Not here: with a shared store it may run on another node, which is told.
        remote = await manager.cancel_remote_http(session_id)
        if remote is None:
            return json_error(
                SessionError(
                    f"no session {session_id!r} here (never started, or ended long ago)",
                    code=ErrorCode.SESSION_NOT_FOUND,
                )
            )
        cancelled = remote
    status = "cancelling" if cancelled else "ended"
    return json_response({"session_id": session_id, "status": status}, 202 if cancelled else 200)


async def handle_health(request: web.Request) -> web.Response:
    """GET /healthz: liveness plus a few live counts."""
    manager = request.app[MANAGER]
    return json_response(
        {
            "status": "shutting_down" if manager.shutting_down else "ok",
            "version": __version__,
            "providers": manager.providers.names,
            "sessions": manager.live_sessions,
            "connections": len(request.app[CONNECTIONS]),
            "store": manager.store.health(),
        },
        503 if manager.shutting_down else 200,
    )
