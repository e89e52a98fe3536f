"""Who may come in: bearer tokens, the Origin allowlist, CORS.

Checks run before a WebSocket is upgraded (``check_websocket``) and first thing in every
/api/ and /v1/ route (``refusal``), so a refused client costs no session, no upgrade and no
socket state. Refusals are plain HTTP errors with a JSON body: 401 ``unauthorized``, 403
``forbidden_origin``, 429 ``rate_limited``. (Rejecting before the upgrade means a browser
sees only a failed handshake, not the code; the trade is that a refused socket never
exists.) Tokens are compared in constant time and never logged.

No aiohttp middleware: an app with any middleware wraps every handler in coroutines of
its own, and an open stream holds them for its whole life. The streaming routes call
``refusal()`` themselves; the routes that answer at once are wrapped by ``checked()``;
every other path under /api/ and /v1/ reaches ``no_route`` (JSON 404 or 405).
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
    "add_no_route",
    "check_origin",
    "check_token",
    "check_websocket",
    "checked",
    "error_answer",
    "no_route",
    "refusal",
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


def refusal(request: web.Request) -> web.Response | None:
    """The answer to an /api/ or /v1/ request that may not go on: a refused Origin or token
    (as JSON, OpenAI's shape under /v1/), or a CORS preflight (204). None: it may go on."""
    auth = request.app[CONFIG].auth
    try:
        origin = check_origin(request, auth)
        if origin is not None:
            request[CORS_ORIGIN] = origin
        if request.method == hdrs.METH_OPTIONS:
            return web.Response(status=204)
        check_token(request, auth, subprotocols=False)
    except TokenmuxError as exc:
        return error_answer(request, exc)
    return None


def error_answer(request: web.Request, exc: Exception) -> web.Response:
    """An error as JSON: OpenAI's shape under /v1/ (what an OpenAI SDK parses), else ours."""
    return openai_error(exc) if request.path.startswith("/v1/") else json_error(exc)


def checked(handler: Handler) -> Handler:
    """A route that answers at once: ``refusal()`` first, and a TokenmuxError the handler
    raises is answered as JSON. (Streaming routes call ``refusal()`` themselves, so that an
    open stream holds no frame of this wrapper.)"""

    async def route(request: web.Request) -> web.StreamResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        try:
            return await handler(request)
        except TokenmuxError as exc:
            return error_answer(request, exc)

    return route


async def no_route(request: web.Request) -> web.Response:
    """Any other method and path under /api/ and /v1/: the same checks (and preflights),
    then a JSON 405 if the path has a route for other methods, else a JSON 404."""
    refused = refusal(request)
    if refused is not None:
        return refused
    code = ErrorCode.NOT_FOUND
    this = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not this and (await resource.resolve(request))[1]:
            code = ErrorCode.METHOD_NOT_ALLOWED
            break
    return error_answer(
        request, TokenmuxError(f"no route {request.method} {request.path}", code=code)
    )


def add_no_route(app: web.Application) -> None:
    """Call after every other route: these match any path under /api/ and /v1/."""
    app.router.add_route("*", "/api/{tail:.*}", no_route)
    app.router.add_route("*", "/v1/{tail:.*}", no_route)


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
