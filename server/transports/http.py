"""Plain HTTP routes: /api/completion, /api/sessions/{id}/cancel, /healthz; JSON errors."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

from server import __version__
from server.errors import (
    ErrorCode,
    ProtocolError,
    SessionError,
    TokenmuxError,
    error_payload,
    http_status,
)
from server.logs import bind_request_id
from server.protocol.envelope import Start
from server.protocol.openai_request import openai_error_body
from server.protocol.validate import InputLimits, parse_http_request
from server.sessions.outbox import CollectingSink
from server.state import CLIENTS, CONFIG, CONNECTIONS, MANAGER

__all__ = [
    "client_address",
    "handle_cancel",
    "handle_completion",
    "handle_health",
    "json_error",
    "json_response",
    "openai_error",
    "parse_start",
    "read_json",
    "read_start",
]


def client_address(request: web.Request) -> str:
    """The client's address: the peer's, or behind a trusted proxy the rightmost
    X-Forwarded-For entry that is not itself a trusted proxy (entries further left are
    whatever the client claimed)."""
    peer = request.remote or "unknown"
    trusted = request.app[CONFIG].server.trusted_proxies
    if peer not in trusted:
        return peer
    for hop in reversed(request.headers.getall("X-Forwarded-For", [])):
        for address in reversed([part.strip() for part in hop.split(",")]):
            if address and address not in trusted:
                return address
    return peer


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def json_error(exc: Exception) -> web.Response:
    """``{error: {code, message}}`` with the status that goes with the code."""
    payload = error_payload(exc)
    body = {"error": {"code": payload["code"], "message": payload["message"]}}
    return json_response(body, http_status(ErrorCode(payload["code"])))


def openai_error(exc: Exception) -> web.Response:
    """The same in OpenAI's shape, ``{error: {message, type, param, code}}`` (under /v1/)."""
    payload = error_payload(exc)
    status = http_status(ErrorCode(payload["code"]))
    return json_response(openai_error_body(payload, status), status)


async def read_start(request: web.Request) -> Start:
    """Parse and validate a streaming/completion request body. Raises TokenmuxError."""
    return parse_start(request, await read_json(request))


async def read_json(request: web.Request) -> Any:
    """The request body as JSON. Raises TokenmuxError (too large, not JSON)."""
    config = request.app[CONFIG]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ProtocolError(
            f"request body larger than {config.limits.max_message_bytes} bytes",
            code=ErrorCode.MESSAGE_TOO_LARGE,
        ) from None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError("the request body is not valid JSON") from None
    return obj


def parse_start(request: web.Request, obj: Any) -> Start:
    """A request body (POST /api/stream's shape) as a Start, once the client may start one."""
    config = request.app[CONFIG]
    limits = InputLimits(
        max_prompt_chars=config.limits.max_prompt_chars, max_messages=config.limits.max_messages
    )
    start = parse_http_request(obj, limits, default_session=uuid.uuid4().hex)
    request.app[CLIENTS].check_start(client_address(request))
    return start


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
        cancelled = manager.http.cancel(session_id)
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
