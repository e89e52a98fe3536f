"""Who may come in: bearer tokens, the Origin allowlist, CORS.

Checks run before a WebSocket is upgraded (``check_websocket``) and before any /api/ handler
(``api_middleware``), so a refused client costs no session, no upgrade and no socket state.
Refusals are plain HTTP errors with a JSON body: 401 ``unauthorized``, 403
``forbidden_origin``, 429 ``rate_limited``. (Rejecting before the upgrade means a browser
sees only a failed handshake, not the code; the trade is that a refused socket never
exists.) Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from server.config import AuthConfig
from server.errors import ErrorCode, TokenmuxError
from server.state import CONFIG, CORS_ORIGIN
from server.transports.http_common import json_error, openai_error

__all__ = [
    "BEARER_SUBPROTOCOL_PREFIX",
    "add_cors_headers",
    "answers_own_errors",
    "api_middleware",
    "check_origin",
    "check_token",
    "check_websocket",
    "without_bearer_subprotocols",
]

BEARER_SUBPROTOCOL_PREFIX = "bearer."
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID"
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_origin(request: web.Request, auth: AuthConfig) -> str | None:
    """The request's Origin if it may be answered with CORS headers; raises if refused."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or not auth.allowed_origins:
        return None  # not a browser, or no allowlist: nothing to check
    allowed = auth.allowed_origins
    same_origin = origin == f"{request.scheme}://{request.host}"
    if origin != "null" and (same_origin or origin in allowed or "*" in allowed):
        return origin
    raise TokenmuxError("this origin is not allowed", code=ErrorCode.FORBIDDEN_ORIGIN)


def check_token(request: web.Request, auth: AuthConfig, *, subprotocols: bool) -> None:
    """Require one of the configured bearer tokens (when any is configured)."""
    if not auth.tokens:
        return
    offered = []
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if header[:7].lower() == "bearer ":
        offered.append(header[7:].strip())
    if subprotocols:
        for item in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(","):
            item = item.strip()
            if item.startswith(BEARER_SUBPROTOCOL_PREFIX):
                offered.append(item[len(BEARER_SUBPROTOCOL_PREFIX) :])
    # Compare every pair, in constant time each, so timing says nothing about the tokens.
    matches = [hmac.compare_digest(o.encode(), t.encode()) for o in offered for t in auth.tokens]
    if not any(matches):
        raise TokenmuxError("a valid bearer token is required", code=ErrorCode.UNAUTHORIZED)


def check_websocket(request: web.Request) -> None:
    """Origin and token checks for GET /ws, before the upgrade."""
    auth = request.app[CONFIG].auth
    check_origin(request, auth)
    check_token(request, auth, subprotocols=True)


def without_bearer_subprotocols(request: web.Request) -> web.Request:
    """The request as aiohttp's handshake should see it: no ``bearer.*`` subprotocols.

    aiohttp logs the offered list at WARNING when none of it is a codec, which would write
    the token to the log; a token is never a subprotocol to answer with anyway.
    """
    offered = request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, [])
    if not any(BEARER_SUBPROTOCOL_PREFIX in value for value in offered):
        return request
    kept = [
        item.strip()
        for value in offered
        for item in value.split(",")
        if item.strip() and not item.strip().startswith(BEARER_SUBPROTOCOL_PREFIX)
    ]
    headers = request.headers.copy()
    headers.popall(hdrs.SEC_WEBSOCKET_PROTOCOL)
    if kept:
        headers[hdrs.SEC_WEBSOCKET_PROTOCOL] = ", ".join(kept)
    return request.clone(headers=headers)


# Handlers that turn every refusal into their own JSON answer (the SSE routes): the
# middleware hands their coroutine to aiohttp as it is, so an open stream holds no frame
# of ours while it streams.
_ANSWERS_OWN_ERRORS: set[Handler] = set()


def answers_own_errors(handler: Handler) -> Handler:
    """Mark a route handler that never lets a TokenmuxError out (see api_middleware)."""
    _ANSWERS_OWN_ERRORS.add(handler)
    return handler


@web.middleware
def api_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Origin and token checks for /api/ and /v1/ routes; answers CORS preflights.

    Errors there, unknown routes included, are JSON: OpenAI's shape under /v1/ (what an
    OpenAI SDK parses), tokenmux's under /api/. The checks run here, before the handler;
    a plain function, not a coroutine, so that a stream needs no frame of it."""
    path = request.path
    if path.startswith("/v1/"):
        error: Callable[[Exception], web.Response] = openai_error
    elif path.startswith("/api/"):
        error = json_error
    else:
        return handler(request)
    auth = request.app[CONFIG].auth
    try:
        origin = check_origin(request, auth)
        if origin is not None:
            request[CORS_ORIGIN] = origin
        if request.method == hdrs.METH_OPTIONS:
            return _answer(web.Response(status=204))
        check_token(request, auth, subprotocols=False)
    except TokenmuxError as exc:
        return _answer(error(exc))
    if request.match_info.handler in _ANSWERS_OWN_ERRORS:
        return handler(request)
    return _translated(request, handler, error)


async def _answer(response: web.StreamResponse) -> web.StreamResponse:
    return response


async def _translated(
    request: web.Request, handler: Handler, error: Callable[[Exception], web.Response]
) -> web.StreamResponse:
    """The handler's response, or its refusal (an unknown route included) as JSON."""
    try:
        return await handler(request)
    except TokenmuxError as exc:
        return error(exc)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        code = ErrorCode.NOT_FOUND if exc.status == 404 else ErrorCode.METHOD_NOT_ALLOWED
        return error(TokenmuxError(f"no route {request.method} {request.path}", code=code))


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: streaming responses get their CORS headers before sending."""
    origin = request.get(CORS_ORIGIN)
    if origin is None:
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = CORS_ALLOW_HEADERS
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = CORS_ALLOW_METHODS
    response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
    response.headers[hdrs.VARY] = "Origin"
