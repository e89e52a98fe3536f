"""Build provider adapters from config and look them up by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from server.config import ProviderConfig, ProvidersConfig
from server.errors import ConfigError, ErrorCode, SessionError
from server.providers.base import Provider
from server.providers.sim import SimProvider

__all__ = ["ProviderRegistry", "build_registry"]

Factory: TypeAlias = Callable[[str, ProviderConfig], Provider]

FACTORIES: dict[str, Factory] = {"sim": SimProvider}


class ProviderRegistry:
    """The configured providers, by name, and the default one."""

    def __init__(self, providers: dict[str, Provider], default: str) -> None:
        if default not in providers:
            raise ConfigError(f"providers.default: {default!r} is not a configured provider")
        self._providers = providers
        self.default = default

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


def build_registry(config: ProvidersConfig) -> ProviderRegistry:
    """One adapter per ``providers.<name>`` entry; the ``type`` picks the adapter."""
    providers: dict[str, Provider] = {}
    for name, entry in config.entries.items():
        factory = FACTORIES.get(entry.type)
        if factory is None:
            known = ", ".join(sorted(FACTORIES))
            raise ConfigError(
                f"providers.{name}.type: unknown type {entry.type!r} (known: {known})"
            )
        providers[name] = factory(name, entry)
    return ProviderRegistry(providers, config.default)
