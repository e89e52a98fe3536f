"""Errors and the one table that turns them into wire codes.

Exception tree::

    TokenmuxError                 carries an ErrorCode, a message safe to send, retryable
    ├── ProtocolError             a client message or request body is bad (sans-I/O core)
    ├── SessionError              duplicate_session, session_not_found, too_many_sessions, ...
    ├── RateLimited               rate_limited (with retry_after_ms)
    ├── ProviderError             provider_error: 5xx, dropped stream, in-stream error event
    │   ├── ProviderTimeout       provider_timeout
    │   ├── ProviderRateLimited   provider_rate_limited (with retry_after_s)
    │   └── ProviderAuth          provider_auth (401/403 from the upstream)
    └── ConfigError               start-up only; names the offending key (also a ValueError)

    ConnectionEnded               why the server ends a WebSocket (not sent as an event)
    ├── SlowConsumer              the client reads slower than its sessions write
    ├── AbusiveClient             the client kept sending past its rate limit
    └── ServerShutdown            the server is stopping

Anything else that escapes is an internal error: it is logged with its detail and sent as
`internal` with a generic message, never with the detail, which may be security-sensitive.

The same goes for closing a socket: ``close_code()`` is the one table from the reason a
connection ends to its WebSocket close code (as python-websockets maps its exceptions), and
any other exception (an encoder or writer failure) closes with 1011 internal error.
"""

from __future__ import annotations

import logging
from enum import IntEnum, StrEnum
from typing import Any

__all__ = [
    "AbusiveClient",
    "CloseCode",
    "ConfigError",
    "ConnectionEnded",
    "ErrorCode",
    "ProtocolError",
    "ProviderAuth",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "RateLimited",
    "ServerShutdown",
    "SessionError",
    "SlowConsumer",
    "TokenmuxError",
    "close_code",
    "error_payload",
    "http_status",
]

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    """Stable error codes of PROTOCOL.md section 5."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    DUPLICATE_SESSION = "duplicate_session"
    SESSION_NOT_FOUND = "session_not_found"
    TOO_MANY_SESSIONS = "too_many_sessions"
    MESSAGE_TOO_LARGE = "message_too_large"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN_ORIGIN = "forbidden_origin"
    UNKNOWN_PROVIDER = "unknown_provider"
    PROVIDER_ERROR = "provider_error"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_AUTH = "provider_auth"
    TIMEOUT = "timeout"
    SHUTTING_DOWN = "shutting_down"
    NODE_LOST = "node_lost"
    MODEL_NOT_FOUND = "model_not_found"
    NOT_FOUND = "not_found"  # no such route (HTTP only)
    METHOD_NOT_ALLOWED = "method_not_allowed"  # the route takes other methods (HTTP only)
    INTERNAL = "internal"

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if sent again later."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        ErrorCode.TOO_MANY_SESSIONS,
        ErrorCode.RATE_LIMITED,
        ErrorCode.PROVIDER_ERROR,
        ErrorCode.PROVIDER_TIMEOUT,
        ErrorCode.PROVIDER_RATE_LIMITED,
        ErrorCode.TIMEOUT,
        ErrorCode.SHUTTING_DOWN,
        ErrorCode.NODE_LOST,
        ErrorCode.INTERNAL,
    }
)

# HTTP status for errors answered as plain HTTP (before an SSE stream starts, or on
# /api/completion).
_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.UNKNOWN_PROVIDER: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN_ORIGIN: 403,
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.MODEL_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.DUPLICATE_SESSION: 409,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
    ErrorCode.TOO_MANY_SESSIONS: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.PROVIDER_ERROR: 502,
    ErrorCode.PROVIDER_AUTH: 502,
    ErrorCode.PROVIDER_RATE_LIMITED: 503,
    ErrorCode.SHUTTING_DOWN: 503,
    ErrorCode.NODE_LOST: 503,
    ErrorCode.PROVIDER_TIMEOUT: 504,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.INTERNAL: 500,
}


class CloseCode(IntEnum):
    """WebSocket close codes used by the server (PROTOCOL.md section 3)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class TokenmuxError(Exception):
    """Base of every error the server turns into an `error` event on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra: dict[str, Any] = {}  # more payload fields, e.g. retry_after_ms
        if code is not None:
            self.code = code

    @property
    def retryable(self) -> bool:
        return self.code.retryable


class ProtocolError(TokenmuxError):
    """A client message or request body that breaks the protocol."""

    code = ErrorCode.BAD_REQUEST


class SessionError(TokenmuxError):
    """A request the session registry refuses (duplicate id, unknown id, limits)."""


class RateLimited(TokenmuxError):
    """A client sends faster than its token bucket allows."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.extra["retry_after_ms"] = max(1, round(retry_after_s * 1000))


class ProviderError(TokenmuxError):
    """The upstream failed: 5xx, an in-stream error, a dropped or truncated stream."""

    code = ErrorCode.PROVIDER_ERROR

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message, code=code)
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        return self.code.retryable if self._retryable is None else self._retryable


class ProviderTimeout(ProviderError):
    code = ErrorCode.PROVIDER_TIMEOUT


class ProviderRateLimited(ProviderError):
    code = ErrorCode.PROVIDER_RATE_LIMITED

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderAuth(ProviderError):
    code = ErrorCode.PROVIDER_AUTH

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class ConfigError(TokenmuxError, ValueError):
    """config.yaml is wrong; the message names the key."""

    code = ErrorCode.INTERNAL


def error_payload(exc: BaseException) -> dict[str, Any]:
    """Turn any exception into the `{code, message, retryable}` of an `error` event.

    This is the only place exceptions become wire errors. Unknown exceptions are logged
    here with their traceback and sent as `internal` without detail.
    """
    if isinstance(exc, TokenmuxError):
        payload = {"code": exc.code.value, "message": exc.message, "retryable": exc.retryable}
        return payload | exc.extra if exc.extra else payload
    logger.error("internal error", exc_info=exc)
    return {
        "code": ErrorCode.INTERNAL.value,
        "message": "internal server error",
        "retryable": ErrorCode.INTERNAL.retryable,
    }


class ConnectionEnded(Exception):
    """The server ends a WebSocket connection on purpose; ``close_code()`` says how."""


class SlowConsumer(ConnectionEnded):
    """The client's outbound queue passed its hard cap: it reads slower than it asks."""


class AbusiveClient(ConnectionEnded):
    """The client kept sending past its message rate limit after being refused."""


class ServerShutdown(ConnectionEnded):
    """The server is stopping (after its goaway and drain)."""


_CLOSE_CODES: tuple[tuple[type[BaseException], CloseCode], ...] = (
    (ServerShutdown, CloseCode.GOING_AWAY),
    (AbusiveClient, CloseCode.POLICY_VIOLATION),
    (SlowConsumer, CloseCode.TRY_AGAIN_LATER),
)


def close_code(exc: BaseException) -> CloseCode:
    """The close code for a connection the server ends because of ``exc``.

    This is the only place close codes are chosen. Anything not in the table is a failure
    of the server's own (an encoder that raised, a broken write): 1011 internal error.
    (A frame over the hard size limit is closed with 1009 by aiohttp itself.)
    """
    for kind, code in _CLOSE_CODES:
        if isinstance(exc, kind):
            return code
    return CloseCode.INTERNAL_ERROR


def http_status(code: ErrorCode) -> int:
    """The HTTP status that goes with an error code on plain HTTP answers."""
    return _HTTP_STATUS[code]
