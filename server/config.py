"""Configuration: config.yaml loaded once into frozen dataclasses.

Every section of config.yaml is a dataclass below, field for field, and config.yaml documents
each key. ``${VAR}`` in a string is replaced by the environment variable (a start-up error
when unset); ``${VAR:-fallback}`` uses ``fallback`` when it is unset or empty. An unknown key
or a value of the wrong type stops start-up with a ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from server.errors import ConfigError, ProtocolError
from server.protocol.validate import parse_params

__all__ = [
    "AuthConfig",
    "CacheConfig",
    "Config",
    "LimitsConfig",
    "ProviderConfig",
    "ProvidersConfig",
    "RateLimitsConfig",
    "ResumeConfig",
    "ServerConfig",
    "SseConfig",
    "WebSocketConfig",
    "config_from_mapping",
    "load_config",
]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    shutdown_timeout_s: float = 10.0  # bound on a graceful stop
    drain_s: float = 5.0  # on shutdown, running sessions may finish for this long
    log_level: str = "INFO"
    # Proxies whose X-Forwarded-For names the real client (per-client limits, logs).
    trusted_proxies: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_sessions_per_connection: int = 100
    max_message_bytes: int = 1_048_576  # one WS frame or one HTTP request body
    max_prompt_chars: int = 100_000
    max_messages: int = 256
    outbox_merge_bytes: int = 65_536  # queued bytes past which chunks of a session merge
    outbox_max_bytes: int = 1_048_576  # queued bytes past which a connection is closed 1013
    send_timeout_s: float = 30.0  # one write may block this long before 1013
    max_session_s: float = 600.0  # a session running longer ends with reason timeout
    max_connections_per_client: int = 32  # open WebSockets per client address
    socket_send_buffer_bytes: int = 131_072  # kernel send buffer per socket; 0: OS default


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    heartbeat_s: float = 20.0  # ping interval; a peer that does not pong is closed


@dataclass(frozen=True, slots=True)
class SseConfig:
    keepalive_s: float = 15.0  # `: ping` comment interval while a stream is quiet


@dataclass(frozen=True, slots=True)
class ResumeConfig:
    enabled: bool = True  # give sessions a resume_token and keep their recent events
    grace_s: float = 30.0  # how long a detached or ended session stays resumable
    buffer_events: int = 256  # events kept per session for replay


@dataclass(frozen=True, slots=True)
class StoreConfig:
    type: str = "memory"  # memory: this process only; redis: shared by several nodes
    url: str = "redis://127.0.0.1:6379/0"  # used by type redis
    key_prefix: str = "tokenmux:"  # every Redis key starts with this
    heartbeat_s: float = 1.0  # node liveness interval; a node silent for 3x this is lost
    op_timeout_s: float = 2.0  # bound on one Redis round trip before it counts as down


@dataclass(frozen=True, slots=True)
class CacheConfig:
    type: str = "none"  # none | memory (this process) | redis (shared, at url or store.url)
    max_entries: int = 1000  # least recently used entries go first past this ...
    max_bytes: int = 67_108_864  # ... or past this many bytes of stored events
    ttl_s: float = 3600.0  # an entry is served for this long after it was stored
    replay: str = "fast"  # fast: at once; paced: at the original stream's pace
    url: str | None = None  # type redis: the server; None: store.url


@dataclass(frozen=True, slots=True)
class AuthConfig:
    tokens: list[str] = field(default_factory=list)  # bearer tokens; empty: no auth
    allowed_origins: list[str] = field(default_factory=list)  # exact; empty: any origin


@dataclass(frozen=True, slots=True)
class RateLimitsConfig:
    messages_per_s: float = 100.0  # per connection, every client message
    message_burst: int = 200
    starts_per_s: float = 20.0  # per client address, session starts (WS and HTTP)
    start_burst: int = 50
    abuse_close_after: int = 100  # refused messages in a row before closing with 1008


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    type: str
    model: str | None = None
    api_key: str | None = None  # empty: an entry whose type needs a key is skipped
    base_url: str | None = None
    timeout_s: float = 60.0  # the HTTP client's connect and per-read timeout
    params: dict[str, Any] = field(default_factory=dict)  # default generation parameters
    # Retries and fallback, before the first chunk only (providers/resilience.py).
    fallbacks: list[str] = field(default_factory=list)  # providers tried next, in order
    max_attempts: int | None = None  # per provider; None: 3, or 1 for type sim
    backoff_base_s: float = 0.5  # first retry waits up to this (full jitter), doubling
    backoff_max_s: float = 8.0  # cap on one backoff wait
    retry_after_max_s: float = 20.0  # a longer Retry-After skips to the next fallback
    # Deadlines per attempt; either one ends the session with provider_timeout.
    first_token_timeout_s: float = 60.0  # request sent -> first progress (text, reasoning, call)
    stall_timeout_s: float = 30.0  # longest quiet gap between chunks
    # After text was sent: off (the session fails) or continue (the next fallback goes on
    # from the text so far; the joined text comes from two models).
    failover: str | bool = "off"  # YAML reads a bare off as false: the same
    cache: bool = False  # every request through the content cache (unless params.cache: false)


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    default: str = "sim"
    entries: dict[str, ProviderConfig] = field(
        default_factory=lambda: {"sim": ProviderConfig(type="sim", model="sim-1")}
    )


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    sse: SseConfig = field(default_factory=SseConfig)
    resume: ResumeConfig = field(default_factory=ResumeConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    rate_limits: RateLimitsConfig = field(default_factory=RateLimitsConfig)
    providers: ProvidersConfig = field(default_factory=ProvidersConfig)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read a YAML file into a Config. Raises ConfigError naming the bad key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML{_yaml_problem(exc)}") from None
    return config_from_mapping(raw or {}, os.environ if environ is None else environ)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`` (line L, column C): problem`` on one line; PyYAML's own text spans several."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{where}: {problem}" if problem else where


def config_from_mapping(raw: Any, environ: Mapping[str, str]) -> Config:
    """Build a Config from already-parsed YAML (what tests use)."""
    raw = _interpolate(raw, environ, "")
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping")
    providers = raw.pop("providers", None)
    config: Config = _build(Config, raw, "")
    if providers is not None:
        config = dataclasses.replace(config, providers=_providers(providers))
    _check(config)
    return config


def _providers(raw: Any) -> ProvidersConfig:
    if not isinstance(raw, dict):
        raise ConfigError("providers: must be a mapping")
    default = raw.get("default", "sim")
    if not isinstance(default, str):
        raise ConfigError("providers.default: must be a string")
    entries = {
        name: _build(ProviderConfig, value, f"providers.{name}.")
        for name, value in raw.items()
        if name != "default"
    }
    for name, entry in entries.items():
        # The defaults of every request: checked as a request's params are, but now, so
        # a wrong type stops start-up instead of failing each request later.
        try:
            parse_params(entry.params, f"providers.{name}.params")
        except ProtocolError as exc:
            raise ConfigError(exc.message) from None
    if default not in entries:
        raise ConfigError(f"providers.default: {default!r} is not a configured provider")
    return ProvidersConfig(default=default, entries=entries)


def _check(config: Config) -> None:
    limits = config.limits
    if config.resume.buffer_events < 1:
        raise ConfigError("resume.buffer_events: must be at least 1")
    if config.store.type not in ("memory", "redis"):
        raise ConfigError("store.type: must be memory or redis")
    if config.store.type == "redis" and importlib.util.find_spec("redis") is None:
        raise ConfigError(
            "store.type: redis needs the redis package: pip install 'tokenmux[redis]'"
        )
    _check_cache(config.cache)
    for name, entry in config.providers.entries.items():
        if entry.failover not in ("off", "continue", False):
            raise ConfigError(f"providers.{name}.failover: must be off or continue")
        if entry.cache and config.cache.type == "none":
            raise ConfigError(f"providers.{name}.cache: needs a cache (cache.type memory or redis)")
    for name in ("heartbeat_s", "op_timeout_s"):
        if getattr(config.store, name) <= 0:
            raise ConfigError(f"store.{name}: must be positive")
    for name in (
        "max_sessions_per_connection",
        "max_message_bytes",
        "max_prompt_chars",
        "max_connections_per_client",
    ):
        if getattr(limits, name) < 1:
            raise ConfigError(f"limits.{name}: must be at least 1")
    if limits.outbox_max_bytes < limits.outbox_merge_bytes:
        raise ConfigError("limits.outbox_max_bytes: must not be below limits.outbox_merge_bytes")
    if not 0 <= config.server.port <= 65535:
        raise ConfigError("server.port: must be from 0 to 65535")


def _check_cache(cache: CacheConfig) -> None:
    if cache.type not in ("none", "memory", "redis"):
        raise ConfigError("cache.type: must be none, memory or redis")
    if cache.type == "redis" and importlib.util.find_spec("redis") is None:
        raise ConfigError(
            "cache.type: redis needs the redis package: pip install 'tokenmux[redis]'"
        )
    if cache.replay not in ("fast", "paced"):
        raise ConfigError("cache.replay: must be fast or paced")
    for name in ("max_entries", "max_bytes"):
        if getattr(cache, name) < 1:
            raise ConfigError(f"cache.{name}: must be at least 1")
    if cache.ttl_s <= 0:
        raise ConfigError("cache.ttl_s: must be above 0")


def _build(cls: Any, raw: Any, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, checking keys and types."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: must be a mapping")
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            values[key] = _cast(value, hint, f"{prefix}{key}")
    missing = [
        name
        for name, f in known.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{prefix}{missing[0]}: is required")
    return cls(**values)


def _cast(value: Any, hint: Any, key: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _cast(value, option, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a mapping")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list")
        (item,) = get_args(hint)
        return [_cast(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Any:
        return value
    raise ConfigError(f"{key}: must be {getattr(hint, '__name__', hint)}, got {value!r}")


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, environ: Mapping[str, str], key: str) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, environ, f"{key}.{k}" if key else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, environ, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        found = environ.get(name)
        if found:
            return found
        if fallback is not None:
            return fallback
        raise ConfigError(f"{key}: environment variable {name} is not set")

    return _ENV.sub(replace, value)
