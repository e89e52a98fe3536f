"""The local upstream of the provider tests serves the compat tests too."""

from tests.providers.conftest import upstream

__all__ = ["upstream"]
