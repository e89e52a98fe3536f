"""Envelope sequences for the encoder tests, shaped as PROTOCOL.md §2 and §9 fix them."""

from __future__ import annotations

from typing import Any

from server.protocol.envelope import Envelope

__all__ = ["Events"]


class Events:
    """Builds one session's envelopes in order, numbering ``seq`` as the server does."""

    def __init__(self, session: str = "s1") -> None:
        self.session = session
        self.events: list[Envelope] = []
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def add(self, kind: str, **data: Any) -> Events:
        self.events.append(
            {
                "type": kind,
                "session": self.session,
                "seq": len(self.events),
                "timestamp": 1_700_000_000_000,
                "data": data,
            }
        )
        return self

    def start(self, provider: str = "sim", model: str = "sim-1") -> Events:
        return self.add(
            "stream_start",
            session_id=self.session,
            provider=provider,
            model=model,
            resume_token=None,
        )

    def text(self, *pieces: str) -> Events:
        for piece in pieces:
            self._text.append(piece)
            length = len("".join(self._text))
            self.add(
                "content_chunk", content=piece, index=len(self._text) - 1, accumulated_length=length
            )
        return self

    def reasoning(self, *pieces: str) -> Events:
        for piece in pieces:
            self._reasoning.append(piece)
            length = len("".join(self._reasoning))
            self.add(
                "reasoning_chunk",
                content=piece,
                index=len(self._reasoning) - 1,
                accumulated_length=length,
            )
        return self

    def tool_call(
        self, call_id: str, name: str, index: int, *fragments: str, arguments: Any
    ) -> Events:
        self.add("tool_call_start", id=call_id, name=name, index=index)
        for fragment in fragments:
            self.add("tool_call_delta", id=call_id, arguments_delta=fragment)
        return self.add("tool_call_end", id=call_id, name=name, arguments=arguments)

    def complete(self, usage: dict[str, Any] | None = None) -> Events:
        text = "".join(self._text)
        self.add("content_complete", total_content=text, total_length=len(text))
        return self.end("complete", usage)

    def fail(self, code: str = "provider_error", message: str = "upstream failed") -> Events:
        self.add("error", code=code, message=message, retryable=True)
        return self.end("error")

    def end(self, reason: str, usage: dict[str, Any] | None = None) -> Events:
        usage = usage or {"input_tokens": 3, "output_tokens": 5, "estimated": False}
        chunks = len(self._text)
        return self.add("stream_end", reason=reason, duration_ms=12, chunks=chunks, usage=usage)
