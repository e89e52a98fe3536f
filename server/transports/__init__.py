"""Thin I/O layers: WebSocket, SSE and plain HTTP over the session manager."""
