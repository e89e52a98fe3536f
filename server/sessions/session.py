"""Session: one generation, run as one asyncio task owned by the SessionManager.

``run()`` drives provider events through a SessionStream and an Emitter into a Sink.
Cancelling the task is the only way to stop it early, and it always ends the stream
properly: the CancelledError lands inside the provider's read (which aborts the upstream
request) and becomes ``stream_end`` with the reason set by whoever cancelled (cancelled,
shutdown, timeout).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

from server.errors import ErrorCode, ProviderError, ProviderTimeout, TokenmuxError, error_payload
from server.metrics import SessionTally, record_fallback, record_provider_error, record_retry
from server.protocol.envelope import Envelope, Start
from server.protocol.stream import EndReason, SessionStream
from server.providers.base import (
    AttemptFailed,
    Finish,
    Metadata,
    Provider,
    ProviderRequest,
    ReasoningDelta,
    Refusal,
    Source,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from server.sessions.emitter import Emitter
from server.sessions.live import Holder
from server.sessions.outbox import Sink
from server.sessions.readers import Readers, ReaderSink

__all__ = ["Session"]

logger = logging.getLogger(__name__)

# How a session ends whose connection failed under it (its writer raised): the client
# may retry; the detail is in the server's log.
_TRANSPORT_FAILED = TokenmuxError("the connection failed", code=ErrorCode.INTERNAL)


# What the max-duration timer runs in: _time_out() reads no context variable and logs
# nothing, and a timer left to copy the task's context would hold one more object per
# live session.
_TIMER_CONTEXT = contextvars.Context()


class Session:
    """State and coroutine of one generation session."""

    # One per live session: slots instead of a __dict__ (memory per open session).
    __slots__ = (
        "_began",
        "_cancel_reason",
        "_max_duration_s",
        "end_reason",
        "id",
        "model",
        "most_readers",
        "out",
        "provider",
        "readers",
        "request",
        "resume_token",
        "scope",
        "start",
        "stream",
        "tally",
        "task",
    )

    def __init__(
        self,
        start: Start,
        provider: Provider,
        sink: Sink,
        *,
        resume_token: str | None = None,
        clock: Callable[[], float] = time.time,
        max_duration_s: float | None = None,
    ) -> None:
        self.id = start.session
        self.start = start
        self.provider = provider
        self.resume_token = resume_token
        self.request = ProviderRequest.of(start)
        self.model = self.request.model or provider.default_model
        self.stream = SessionStream(self.id, prompt_chars=self.request.prompt_chars, clock=clock)
        self.out = Emitter(self.stream, sink)
        self.end_reason: EndReason | None = None
        self.task: asyncio.Task[None] | None = None  # set by the manager, which owns it
        self.scope: Holder  # the registry holding it now; set by the manager
        self._max_duration_s = max_duration_s
        self._cancel_reason: EndReason = "cancelled"
        self._began = 0.0
        self.readers = 0  # watching connections now (PROTOCOL.md §12)
        self.most_readers = 0  # for the readers-per-session metric
        self.tally = SessionTally()  # ttft, errors, retries, cancel time: read at session end

    @property
    def live(self) -> bool:
        """True until ``stream_end`` was produced. (A task cancelled before its first step
        is done before that: its end comes from the manager's done-callback.)"""
        return self.task is not None and not self.stream.ended

    def cancel(self, reason: EndReason = "cancelled") -> None:
        """Cancel the task; it ends the stream with ``stream_end{reason}``."""
        if self.task is not None and not self.task.done():
            self._cancel_reason = reason
            if self.tally.cancel_requested_at is None:
                self.tally.cancel_requested_at = time.monotonic()
            self.task.cancel()

    def _time_out(self) -> None:
        """The max duration is over: end with ``stream_end{timeout}``."""
        if self.task is not None and not self.task.done():
            self._cancel_reason = "timeout"
            self.task.cancel()

    @property
    def sink(self) -> Sink:
        return self.out.sink

    def writes_to(self, sink: Sink) -> bool:
        """True while ``sink`` is where the session's events go (not taken over since)."""
        return self._owner_sink() is sink

    def retarget(self, sink: Sink) -> None:
        """Send future events to ``sink`` (resume on a new transport, or detach); readers
        (``watch``) keep reading."""
        out = self.out.sink
        target = getattr(out, "target", None)
        if isinstance(target, Readers):
            target.primary = sink
        elif target is not None:
            out.target = sink  # type: ignore[attr-defined]
        else:
            self.out.sink = sink

    def add_reader(self, reader: ReaderSink) -> None:
        """One more reader of the live rest (a resumable session: its sink replays)."""
        out: Any = self.out.sink
        if not isinstance(out.target, Readers):
            out.target = Readers(out.target)
        out.target.add(reader)
        self.readers += 1
        self.most_readers = max(self.most_readers, self.readers)

    def remove_reader(self, reader: ReaderSink) -> None:
        target = getattr(self.out.sink, "target", None)
        if isinstance(target, Readers) and reader in target.readers:
            target.remove(reader)
            self.readers -= 1

    def _owner_sink(self) -> Sink:
        out = self.out.sink
        target = getattr(out, "target", out)
        return target.primary if isinstance(target, Readers) else target

    def open(self) -> None:
        """Send ``stream_start``. Called by the manager before the task exists, so even a
        session cancelled before its task ever ran has a start to pair with its end."""
        self._began = time.monotonic()
        self._emit(
            self.stream.start(
                provider=self.provider.name, model=self.model, resume_token=self.resume_token
            )
        )

    def close_if_open(self) -> None:
        """End a stream whose task never got to (cancelled before its first step)."""
        if not self.stream.ended:
            self._finish(self._cancelled_end())

    async def run(self) -> None:
        """Produce the rest of the session's life. Returns normally even when cancelled.

        One coroutine for the whole life, provider reading included: every live session
        holds its frames, so the reading is not a second coroutine awaited from here."""
        stream, out, began = self.stream, self.out, self._began
        # The max duration is one timer that cancels the task with reason timeout (no
        # asyncio.timeout context held by every live session).
        limit = None
        if self._max_duration_s:
            limit = asyncio.get_running_loop().call_later(
                self._max_duration_s, self._time_out, context=_TIMER_CONTEXT
            )
        delay = self.start.chunk_delay_ms / 1000
        ttft_ms: int | None = None
        finish: Finish | None = None
        refusal: list[str] = []
        events = self.provider.stream(self.request)
        text_out = out.text
        try:
            try:
                async for event in events:
                    # The per-token path first: one type test and one call while text flows.
                    if event.__class__ is TextDelta:
                        text = event.text
                        if text:
                            if ttft_ms is None:
                                ttft_ms = self._first_output(began)
                            text_out(text)
                            if delay:
                                await asyncio.sleep(delay)
                        continue
                    # Fields read from the event, not captured by the patterns: every
                    # capture would be one more slot in this frame, held by every session.
                    match event:
                        case ReasoningDelta():
                            if ttft_ms is None:
                                ttft_ms = self._first_output(began)
                            if event.signature is not None:
                                stream.sign_reasoning(event.signature)
                            if event.text:
                                out.reasoning(event.text)
                                if delay:
                                    await asyncio.sleep(delay)
                        case ToolCallStart():
                            if ttft_ms is None:
                                ttft_ms = self._first_output(began)
                            self._emit(stream.tool_call_start(event.id, event.name, event.index))
                        case ToolCallDelta():
                            self._emit(stream.tool_call_delta(event.id, event.arguments_delta))
                        case ToolCallEnd():
                            self._emit(
                                stream.tool_call_end(
                                    event.id,
                                    event.name,
                                    event.arguments,
                                    event.arguments_text,
                                    event.signature,
                                )
                            )
                        case Source():
                            self._emit(stream.source(_present(event)))
                        case Refusal():
                            if ttft_ms is None:
                                ttft_ms = self._first_output(began)
                            refusal.append(event.text)
                        case Usage():
                            stream.record_usage(
                                event.input_tokens,
                                event.output_tokens,
                                event.cached_input_tokens,
                                event.reasoning_tokens,
                            )
                        case Metadata():  # e.g. which fallback provider answered
                            self._emit(stream.metadata(dict(event.data)))
                        case AttemptFailed():
                            self._count_failed_attempt(
                                event.provider, event.code, event.next_provider
                            )
                        case Finish():
                            finish = event
            finally:
                # Close the provider's generator (and with it the upstream request) however
                # the loop ended: finished, failed, or cancelled mid-read.
                close = getattr(events, "aclose", None)
                if close is not None:
                    await close()
            if finish is None:
                raise ProviderError("the provider's stream ended without its final frame")
        except asyncio.CancelledError:
            # The cancel is the acknowledgement's cause: answer it, do not propagate it. The
            # task is ours alone, so nothing above waits for the CancelledError itself.
            self._finish(self._cancelled_end())
            return
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                exc = ProviderTimeout("the provider timed out")
            payload = error_payload(exc)
            self.tally.error_code = payload["code"]
            self._finish(stream.fail(payload))
            return
        finally:
            if limit is not None:
                limit.cancel()
        self._emit(stream.metadata(self._final_metadata(finish, ttft_ms, refusal)))
        self._finish(stream.complete())

    def _final_metadata(
        self, finish: Finish, ttft_ms: int | None, refusal: list[str]
    ) -> dict[str, object]:
        usage = {k: v for k, v in self.stream.usage().items() if k != "estimated"}
        metadata: dict[str, object] = {
            "usage": usage,
            "finish_reason": finish.reason,
            "model": finish.model or self.model,
            "ttft_ms": ttft_ms,
        }
        if finish.raw_reason is not None:
            metadata["raw_finish_reason"] = finish.raw_reason
        if refusal:
            metadata["refusal"] = "".join(refusal)
        return metadata

    def _first_output(self, began: float) -> int:
        """The first output of any kind (text, reasoning, a call): time to first token."""
        self.tally.ttft_s = time.monotonic() - began
        return round(self.tally.ttft_s * 1000)

    def _count_failed_attempt(self, provider: str, code: str, next_provider: str) -> None:
        record_provider_error(self.tally, provider=provider, code=code)
        if next_provider == provider:
            record_retry(self.tally, provider=provider)
        else:
            record_fallback(self.tally, from_provider=provider, to_provider=next_provider)

    def _cancelled_end(self) -> list[Envelope]:
        """The end of a cancelled session: ``stream_end{reason}``, or, when its transport
        failed (reason ``error``), ``error{internal}`` first, as every failed stream has."""
        if self._cancel_reason == "error":
            self.tally.error_code = ErrorCode.INTERNAL.value
            return self.stream.fail(error_payload(_TRANSPORT_FAILED))
        return [self.stream.end(self._cancel_reason)]

    def _emit(self, envelope: Envelope) -> None:
        self.out.send(envelope)

    def _finish(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            self._emit(envelope)
        end = envelopes[-1]["data"]
        self.end_reason = end["reason"]
        tally = self.tally
        tally.duration_s = end["duration_ms"] / 1000
        # One line per session, key=value so log tools can parse it; ids also come from
        # the logging context (request id, session id) on every line.
        logger.info(
            "session_end session=%s provider=%s model=%s reason=%s error=%s ttft_ms=%s "
            "chunks=%d output_tokens=%d tokens_estimated=%s duration_ms=%d",
            self.id,
            self.provider.name,
            self.model,
            end["reason"],
            tally.error_code or "-",
            "-" if tally.ttft_s is None else round(tally.ttft_s * 1000),
            end["chunks"],
            end["usage"]["output_tokens"],
            str(end["usage"]["estimated"]).lower(),
            end["duration_ms"],
            extra={"session_id": self.id},  # also when not logged from the session's task
        )


def _present(source: Source) -> dict[str, object]:
    """A source's known fields (PROTOCOL.md section 9: each is optional)."""
    fields = {
        "url": source.url,
        "title": source.title,
        "cited_text": source.cited_text,
        "document_index": source.document_index,
    }
    return {key: value for key, value in fields.items() if value is not None}
