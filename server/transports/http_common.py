"""What every HTTP route shares: the client's address, JSON answers and JSON errors (ours,
and OpenAI's shape under /v1/), and reading a start request from a body."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

from server.errors import ErrorCode, ProtocolError, error_payload, http_status
from server.protocol.envelope import Start
from server.protocol.openai_request import openai_error_body
from server.protocol.validate import InputLimits, parse_http_request
from server.state import CLIENTS, CONFIG

__all__ = [
    "client_address",
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
    peer = _peer(request)
    trusted = request.app[CONFIG].server.trusted_proxies
    if peer not in trusted:
        return peer
    for hop in reversed(request.headers.getall("X-Forwarded-For", [])):
        for address in reversed([part.strip() for part in hop.split(",")]):
            if address and address not in trusted:
                return address
    return peer


def _peer(request: web.Request) -> str:
    """``request.remote``, without the answer cached on the request: a table of its own
    that every open stream would hold."""
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, (list, tuple)):
        return str(peername[0])
    return str(peername) if peername else "unknown"


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
    body = await _read_body(request, request.app[CONFIG].limits.max_message_bytes)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError("the request body is not valid JSON") from None
    return obj


async def _read_body(request: web.Request, max_bytes: int) -> bytes:
    """The body, read from its stream. Not ``request.read()``: that keeps a copy on the
    request for as long as it lives, a whole stream for the streaming routes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > max_bytes:
            raise ProtocolError(
                f"request body larger than {max_bytes} bytes", code=ErrorCode.MESSAGE_TOO_LARGE
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_start(request: web.Request, obj: Any) -> Start:
    """A request body (POST /api/stream's shape) as a Start, once the client may start one."""
    config = request.app[CONFIG]
    limits = InputLimits(
        max_prompt_chars=config.limits.max_prompt_chars, max_messages=config.limits.max_messages
    )
    start = parse_http_request(obj, limits, default_session=uuid.uuid4().hex)
    request.app[CLIENTS].check_start(client_address(request))
    return start
