"""Build provider adapters from config and look them up by name.

Every entry becomes its adapter wrapped in a ResilientProvider (retries, fallbacks,
deadlines), itself behind a CachedProvider (the content cache, for the requests that use
it; the others reach the chain directly).

An entry whose type needs an API key (openai, openai_responses, anthropic, gemini) and
whose ``api_key`` is empty is skipped with a warning, so the shipped config can list the
real providers as ``${OPENAI_API_KEY:-}`` and still start with no keys at all; a skipped
entry is also dropped from every ``fallbacks`` list. Naming a skipped entry as
``providers.default`` is a start-up error.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TypeAlias

from server.cache.base import ContentCache
from server.cache.provider import CachedProvider
from server.config import ProviderConfig, ProvidersConfig
from server.errors import ConfigError, ErrorCode, SessionError
from server.providers.base import Provider
from server.providers.resilience import ResilientProvider, RetryPolicy, Route

__all__ = ["ProviderRegistry", "build_registry"]

logger = logging.getLogger(__name__)

Factory: TypeAlias = Callable[[str, ProviderConfig], Provider]

# Adapters by `type`, imported only when configured: the SDKs take a second or more to
# import, and a server that serves only the simulator needs none of them installed.
FACTORIES: dict[str, tuple[str, str]] = {
    "sim": ("server.providers.sim", "SimProvider"),
    "openai": ("server.providers.openai_chat", "OpenAIProvider"),
    "openai_responses": ("server.providers.openai_responses", "OpenAIResponsesProvider"),
    "anthropic": ("server.providers.anthropic_messages", "AnthropicProvider"),
    "gemini": ("server.providers.gemini", "GeminiProvider"),
    "ollama": ("server.providers.ollama", "OllamaProvider"),
}


def _factory(type_: str, entry_name: str) -> Factory:
    module, name = FACTORIES[type_]
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("server."):
            raise  # a bug, not a missing install
        raise ConfigError(
            f"providers.{entry_name}: needs the providers extra: pip install 'tokenmux[providers]'"
        ) from None
    factory: Factory = getattr(imported, name)
    return factory


NEEDS_KEY = frozenset({"openai", "openai_responses", "anthropic", "gemini"})
# Types whose API continues a conversation's trailing assistant turn as it is (prefill);
# the others are asked to continue by an instruction (failover: continue).
PREFILL = frozenset({"anthropic"})


class ProviderRegistry:
    """The configured providers, by name, and the default one."""

    def __init__(
        self, providers: dict[str, Provider], default: str, cache: ContentCache | None = None
    ) -> None:
        if default not in providers:
            raise ConfigError(f"providers.default: {default!r} is not a configured provider")
        self._providers = providers
        self.default = default
        self.cache = cache

    @property
    def names(self) -> list[str]:
        return list(self._providers)

    def get(self, name: str | None) -> Provider:
        """The provider called ``name`` (the default when None); unknown_provider otherwise."""
        provider = self._providers.get(self.default if name is None else name)
        if provider is None:
            raise SessionError(f"unknown provider {name!r}", code=ErrorCode.UNKNOWN_PROVIDER)
        return provider

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        if self.cache is not None:
            await self.cache.aclose()


def build_registry(
    config: ProvidersConfig, cache: ContentCache | None = None, *, paced_replay: bool = False
) -> ProviderRegistry:
    """One adapter per usable ``providers.<name>`` entry; the ``type`` picks the adapter.
    ``cache``: the content cache (config ``cache``), None when there is none."""
    adapters: dict[str, tuple[Provider, RetryPolicy]] = {}
    for name, entry in config.entries.items():
        if entry.type not in FACTORIES:
            known = ", ".join(sorted(FACTORIES))
            raise ConfigError(
                f"providers.{name}.type: unknown type {entry.type!r} (known: {known})"
            )
        if entry.type in NEEDS_KEY and not entry.api_key:
            logger.warning("providers.%s: no api_key, so this provider is not served", name)
            continue
        adapters[name] = (_factory(entry.type, name)(name, entry), _policy(name, entry))
    if config.default not in adapters:
        raise ConfigError(f"providers.default: {config.default!r} has no api_key")
    providers: dict[str, Provider] = {}
    for name, (adapter, policy) in adapters.items():
        routes = [Route(adapter, policy)]
        for other in config.entries[name].fallbacks:
            if other not in config.entries or other == name:
                raise ConfigError(f"providers.{name}.fallbacks: {other!r} is not another provider")
            if other in adapters:
                prefill = config.entries[other].type in PREFILL
                routes.append(Route(*adapters[other], prefill=prefill))
        failover = config.entries[name].failover == "continue"
        providers[name] = CachedProvider(
            ResilientProvider(routes, failover=failover),
            cache,
            always=config.entries[name].cache,
            paced=paced_replay,
        )
    return ProviderRegistry(providers, config.default, cache)


def _policy(name: str, entry: ProviderConfig) -> RetryPolicy:
    policy = RetryPolicy.of(entry)
    if policy.max_attempts < 1:
        raise ConfigError(f"providers.{name}.max_attempts: must be at least 1")
    for key in ("timeout_s", "first_token_timeout_s", "stall_timeout_s"):
        if getattr(entry, key) <= 0:
            raise ConfigError(f"providers.{name}.{key}: must be above 0")
    return policy
