"""SessionStream: the per-session state machine of PROTOCOL.md section 2.

Feed it what the provider produced and it returns the envelopes to send, with ``seq``,
``index`` and ``accumulated_length`` already right. It does no I/O and never awaits; the
clock is a parameter. The only legal shape it can produce is::

    stream_start (content_chunk | reasoning_chunk | tool_call_* | source | metadata)*
        [content_complete | error] stream_end

Reasoning is counted apart from content (its own ``index`` and ``accumulated_length``) and
is not in ``stream_end.chunks``; ``content_complete`` carries the whole reasoning and the
parsed tool calls (PROTOCOL.md section 9).

Calling a method that would break that shape raises StreamStateError (an AssertionError
too: it is always a bug in the caller, never bad input).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Any, Literal

from server.protocol.envelope import Envelope, EventType
from server.protocol.merge import merge

__all__ = ["EndReason", "SessionStream", "StreamStateError", "estimate_tokens"]

EndReason = Literal["complete", "cancelled", "error", "timeout", "shutdown"]


class StreamStateError(RuntimeError, AssertionError):
    """A SessionStream method was called out of order."""


class _State(Enum):
    NEW = "new"
    OPEN = "open"
    SETTLED = "settled"  # content_complete or error sent; only stream_end may follow
    ENDED = "ended"


_OPEN = _State.OPEN
_CONTENT_CHUNK: str = EventType.CONTENT_CHUNK.value
_REASONING_CHUNK: str = EventType.REASONING_CHUNK.value


def estimate_tokens(chars: int) -> int:
    """Rough token count for text a provider never counted (about 4 characters a token)."""
    return (chars + 3) // 4


class SessionStream:
    """Builds one session's envelopes in order. Not thread-safe; one owner."""

    # One per live session: slots instead of a __dict__ save ~0.5 KiB each.
    __slots__ = (
        "_chunks",
        "_clock",
        "_length",
        "_parts",
        "_prompt_chars",
        "_reasoning",
        "_seq",
        "_started_at",
        "_state",
        "_tool_calls",
        "_usage",
        "session_id",
    )

    def __init__(
        self, session_id: str, *, prompt_chars: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.session_id = session_id
        self._clock = clock
        self._state = _State.NEW
        self._seq = 0
        self._prompt_chars = prompt_chars
        self._parts: list[str] = []
        self._length = 0
        self._chunks = 0
        self._started_at = 0.0
        self._usage: dict[str, int] | None = None
        self._reasoning: _Reasoning | None = None  # made by the first reasoning
        self._tool_calls: list[dict[str, Any]] = []

    # Reading state.

    @property
    def ended(self) -> bool:
        return self._state is _State.ENDED

    @property
    def settled(self) -> bool:
        """True once content_complete or error was produced (only stream_end may follow)."""
        return self._state in (_State.SETTLED, _State.ENDED)

    @property
    def chunks(self) -> int:
        """How many content_chunk events were produced."""
        return self._chunks

    @property
    def length(self) -> int:
        """Code points of content produced so far."""
        return self._length

    def text(self) -> str:
        """All content produced so far."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def reasoning_text(self) -> str:
        """All reasoning produced so far."""
        return self._reasoning.text() if self._reasoning is not None else ""

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The completed tool calls so far, as ``content_complete`` lists them."""
        return self._tool_calls

    def usage(self) -> dict[str, Any]:
        """Best usage known now; ``estimated`` when the provider never reported it."""
        if self._usage is not None:
            return {**self._usage, "estimated": False}
        return {
            "input_tokens": estimate_tokens(self._prompt_chars),
            "output_tokens": estimate_tokens(self._length),
            "estimated": True,
        }

    # Producing events.

    def start(self, *, provider: str, model: str, resume_token: str | None) -> Envelope:
        """The ``stream_start`` event (seq 0). Must be called first, once."""
        self._expect(_State.NEW, "start")
        self._state = _State.OPEN
        self._started_at = self._clock()
        data = {
            "session_id": self.session_id,
            "provider": provider,
            "model": model,
            "resume_token": resume_token,
        }
        return self._event(EventType.STREAM_START, data)

    def chunk(self, text: str) -> Envelope:
        """A ``content_chunk`` carrying ``text`` (callers skip empty text)."""
        # The per-token path: _expect() and _event() inlined, the type a plain str constant
        # (enum attribute and .value lookups cost more than the rest of this method).
        if self._state is not _OPEN:
            self._expect(_OPEN, "chunk")
        self._parts.append(text)
        length = self._length = self._length + len(text)
        index = self._chunks
        self._chunks = index + 1
        seq = self._seq
        self._seq = seq + 1
        return {
            "type": _CONTENT_CHUNK,
            "session": self.session_id,
            "seq": seq,
            "timestamp": int(self._clock() * 1000),
            "data": {"content": text, "index": index, "accumulated_length": length},
        }

    def reasoning(self, text: str) -> Envelope:
        """A ``reasoning_chunk`` carrying ``text``; counted apart from content."""
        # Per token too: inlined as chunk() is.
        if self._state is not _OPEN:
            self._expect(_OPEN, "reasoning")
        reasoning = self._reasoning
        if reasoning is None:
            reasoning = self._reasoning = _Reasoning()
        reasoning.parts.append(text)
        length = reasoning.length = reasoning.length + len(text)
        index = reasoning.chunks
        reasoning.chunks = index + 1
        seq = self._seq
        self._seq = seq + 1
        return {
            "type": _REASONING_CHUNK,
            "session": self.session_id,
            "seq": seq,
            "timestamp": int(self._clock() * 1000),
            "data": {"content": text, "index": index, "accumulated_length": length},
        }

    def sign_reasoning(self, signature: str) -> None:
        """Remember the provider's signature over the reasoning (sent in content_complete)."""
        self._reasoning = self._reasoning or _Reasoning()
        self._reasoning.signature = signature

    def tool_call_start(self, call_id: str, name: str, index: int) -> Envelope:
        self._expect(_OPEN, "tool_call_start")
        data = {"id": call_id, "name": name, "index": index}
        return self._event(EventType.TOOL_CALL_START, data)

    def tool_call_delta(self, call_id: str, arguments_delta: str) -> Envelope:
        self._expect(_OPEN, "tool_call_delta")
        data = {"id": call_id, "arguments_delta": arguments_delta}
        return self._event(EventType.TOOL_CALL_DELTA, data)

    def tool_call_end(
        self,
        call_id: str,
        name: str,
        arguments: Any,
        arguments_text: str,
        signature: str | None = None,
    ) -> Envelope:
        """A complete call: ``arguments`` parsed, or null with the raw text and
        ``error: "invalid_json"`` when the model's JSON did not parse."""
        self._expect(_OPEN, "tool_call_end")
        call: dict[str, Any] = {"id": call_id, "name": name, "arguments": arguments}
        if arguments is None:
            call |= {"arguments_text": arguments_text, "error": "invalid_json"}
        if signature is not None:
            call["signature"] = signature
        self._tool_calls.append(call)
        return self._event(EventType.TOOL_CALL_END, dict(call))

    def source(self, source: dict[str, Any]) -> Envelope:
        """A ``source`` event: ``{url?, title?, cited_text?, document_index?}``."""
        self._expect(_OPEN, "source")
        return self._event(EventType.SOURCE, source)

    def merge_chunk(self, newest: Envelope, text: str) -> Envelope:
        """``newest`` with ``text`` appended, as a new envelope that replaces it.

        How the session merges under backpressure (PROTOCOL.md §7): ``newest`` must be this
        session's newest event, a content_chunk no reader has taken yet. The merged chunk
        keeps its seq and index (no seq is spent), and its ``accumulated_length`` stays
        true. The caller swaps it for ``newest`` wherever ``newest`` is queued.
        """
        self._expect(_State.OPEN, "merge_chunk")
        kind = newest["type"]
        if (
            kind not in (_CONTENT_CHUNK, _REASONING_CHUNK)
            or newest["session"] != self.session_id
            or newest["seq"] != self._seq - 1
        ):
            raise StreamStateError("only this session's newest event, a chunk, can be merged")
        if kind == _CONTENT_CHUNK:
            self._parts.append(text)
            length = self._length = self._length + len(text)
        else:
            assert self._reasoning is not None
            length = self._reasoning.extend(text)
        data = newest["data"]
        continuation: Envelope = {
            "type": kind,
            "session": self.session_id,
            "seq": newest["seq"],
            "timestamp": int(self._clock() * 1000),
            "data": {"content": text, "index": data["index"], "accumulated_length": length},
        }
        return merge((newest, continuation))

    def record_usage(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        """Remember the provider's own usage count (used by stream_end); the cached and
        reasoning counts only when the provider reported them."""
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        if cached_input_tokens is not None:
            usage["cached_input_tokens"] = cached_input_tokens
        if reasoning_tokens is not None:
            usage["reasoning_tokens"] = reasoning_tokens
        self._usage = usage

    def metadata(self, data: dict[str, Any]) -> Envelope:
        """A ``metadata`` event (usage, finish_reason, model, ttft_ms, ...)."""
        self._expect(_State.OPEN, "metadata")
        return self._event(EventType.METADATA, data)

    def complete(self) -> list[Envelope]:
        """Success: ``content_complete`` then ``stream_end{complete}``."""
        self._expect(_State.OPEN, "complete")
        self._state = _State.SETTLED
        text = self.text()
        data: dict[str, Any] = {"total_content": text, "total_length": self._length}
        if self._reasoning is not None:
            data["reasoning"] = self._reasoning.summary()
        if self._tool_calls:
            data["tool_calls"] = self._tool_calls
        done = self._event(EventType.CONTENT_COMPLETE, data)
        return [done, self.end("complete")]

    def fail(self, error: dict[str, Any]) -> list[Envelope]:
        """Failure: ``error{code, message, retryable}`` then ``stream_end{error}``."""
        self._expect(_State.OPEN, "fail")
        self._state = _State.SETTLED
        return [self._event(EventType.ERROR, error), self.end("error")]

    def end(self, reason: EndReason) -> Envelope:
        """The last event. ``complete``/``error`` only after complete()/fail() settled it."""
        if self._state is _State.ENDED or self._state is _State.NEW:
            raise StreamStateError(f"cannot end a stream that is {self._state.value}")
        settled = self._state is _State.SETTLED
        if settled != (reason in ("complete", "error")):
            raise StreamStateError(f"reason {reason!r} does not fit a {self._state.value} stream")
        self._state = _State.ENDED
        data = {
            "reason": reason,
            "duration_ms": round((self._clock() - self._started_at) * 1000),
            "chunks": self._chunks,
            "usage": self.usage(),
        }
        return self._event(EventType.STREAM_END, data)

    # Private helpers.

    def _expect(self, state: _State, action: str) -> None:
        if self._state is not state:
            raise StreamStateError(f"cannot {action} a stream that is {self._state.value}")

    def _event(self, type_: EventType, data: dict[str, Any]) -> Envelope:
        seq = self._seq
        self._seq += 1
        return {
            "type": type_.value,
            "session": self.session_id,
            "seq": seq,
            "timestamp": int(self._clock() * 1000),
            "data": data,
        }


class _Reasoning:
    """A session's reasoning: its text (in pieces), chunk count, length and signature."""

    __slots__ = ("chunks", "length", "parts", "signature")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.chunks = 0
        self.length = 0
        self.signature: str | None = None

    def extend(self, text: str) -> int:
        self.parts.append(text)
        self.length += len(text)
        return self.length

    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text()}
        if self.signature is not None:
            out["signature"] = self.signature
        return out
