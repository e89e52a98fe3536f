"""tokenmux: stream LLM output to web clients over multiplexed WebSockets and SSE."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
