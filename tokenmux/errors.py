"""The exceptions of the client: one per kind of failure, each carrying the server's code.

Tree::

    TokenmuxError              code, message, retryable (+ ref, session, retry_after_s)
    ├── RequestError           bad_request, unknown_type, invalid_field, message_too_large,
    │                          unknown_provider, duplicate_session
    ├── AuthError              unauthorized, forbidden_origin
    ├── SessionNotFound        session_not_found
    ├── RateLimited            rate_limited, too_many_sessions
    ├── ProviderError          provider_error
    │   ├── ProviderTimeout    provider_timeout
    │   ├── ProviderRateLimited  provider_rate_limited
    │   └── ProviderAuth       provider_auth
    ├── ServerError            internal, timeout, shutting_down, node_lost
    ├── ConnectionFailed       the WebSocket could not be opened (client-side)
    ├── ConnectionLost         the socket dropped and the session could not be resumed
    ├── ClientClosed           ``close()`` ended the session
    └── BadResponse            the server sent something this client cannot read

An unknown code becomes a plain TokenmuxError, so a newer server never breaks a catch-all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AuthError",
    "BadResponse",
    "ClientClosed",
    "ConnectionFailed",
    "ConnectionLost",
    "ProviderAuth",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "RateLimited",
    "RequestError",
    "ServerError",
    "SessionNotFound",
    "TokenmuxError",
    "error_from_payload",
]

# The codes the server marks retryable (PROTOCOL.md section 5), used when a payload omits it.
_RETRYABLE = frozenset(
    {
        "too_many_sessions",
        "rate_limited",
        "provider_error",
        "provider_timeout",
        "provider_rate_limited",
        "timeout",
        "shutting_down",
        "node_lost",
        "internal",
        "connection_failed",
        "connection_lost",
    }
)


class TokenmuxError(Exception):
    """A failure with the server's stable ``code`` and whether a retry may succeed."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool | None = None,
        ref: Mapping[str, Any] | None = None,
        session: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = code in _RETRYABLE if retryable is None else retryable
        self.ref = dict(ref) if ref else None
        self.session = session
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class RequestError(TokenmuxError):
    """The request was refused as it stands; sending it again will not help."""


class AuthError(TokenmuxError):
    """No valid bearer token, a forbidden Origin, or a wrong resume token."""


class SessionNotFound(TokenmuxError):
    """The server knows no such session on this connection."""


class RateLimited(TokenmuxError):
    """Too many messages, starts or live sessions; ``retry_after_s`` says when to retry."""


class ProviderError(TokenmuxError):
    """The model provider failed."""


class ProviderTimeout(ProviderError):
    """The provider was too slow to start or stalled."""


class ProviderRateLimited(ProviderError):
    """The provider refused for now (its rate limit or overload)."""


class ProviderAuth(ProviderError):
    """The server's key for the provider was refused."""


class ServerError(TokenmuxError):
    """The server failed, timed the session out, shut down, or lost the node running it."""


class ConnectionFailed(TokenmuxError):
    """The WebSocket could not be opened."""


class ConnectionLost(TokenmuxError):
    """The socket dropped while the session was live, and it could not be resumed."""


class ClientClosed(TokenmuxError):
    """The client was closed while the session was live."""


class BadResponse(TokenmuxError):
    """The server sent something this client cannot read."""


_CLASSES: dict[str, type[TokenmuxError]] = {
    "bad_request": RequestError,
    "unknown_type": RequestError,
    "invalid_field": RequestError,
    "message_too_large": RequestError,
    "unknown_provider": RequestError,
    "duplicate_session": RequestError,
    "unauthorized": AuthError,
    "forbidden_origin": AuthError,
    "session_not_found": SessionNotFound,
    "rate_limited": RateLimited,
    "too_many_sessions": RateLimited,
    "provider_error": ProviderError,
    "provider_timeout": ProviderTimeout,
    "provider_rate_limited": ProviderRateLimited,
    "provider_auth": ProviderAuth,
    "internal": ServerError,
    "timeout": ServerError,
    "shutting_down": ServerError,
    "node_lost": ServerError,
    "connection_failed": ConnectionFailed,
    "connection_lost": ConnectionLost,
    "closed": ClientClosed,
    "bad_response": BadResponse,
}


def error_from_payload(data: Mapping[str, Any], *, session: str | None = None) -> TokenmuxError:
    """The exception for an ``error`` payload ``{code, message, retryable, ref?, ...}``."""
    code = str(data.get("code", "internal"))
    retryable = data.get("retryable")
    ref = data.get("ref")
    retry_after_ms = data.get("retry_after_ms")
    cls = _CLASSES.get(code, TokenmuxError)
    return cls(
        code,
        str(data.get("message", code)),
        retryable=retryable if isinstance(retryable, bool) else None,
        ref=ref if isinstance(ref, Mapping) else None,
        session=session,
        retry_after_s=retry_after_ms / 1000 if isinstance(retry_after_ms, int | float) else None,
    )
