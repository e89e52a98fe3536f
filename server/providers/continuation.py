"""Failover that continues (``failover: continue``): asking the next provider to go on
from the text already sent, and trimming what it repeats of it. Pure: no I/O, no asyncio.

The next provider gets the conversation plus the text so far as an assistant turn. A
provider that continues a trailing assistant turn (``prefill``: Anthropic) goes on from
it as it is; the others get one more user turn asking to continue from where the text
stopped. Either way a model may repeat the end of the text (or start over): the
``OverlapTrimmer`` holds the continuation's first characters until it can tell, and drops
the longest repeat of the text's end it finds (or the whole restarted text).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from server.protocol.envelope import Message
from server.providers.base import Finish, ProviderEvent, ProviderRequest, TextDelta

__all__ = ["CONTINUE_INSTRUCTION", "Cut", "OverlapTrimmer", "continuation_request"]

CONTINUE_INSTRUCTION = (
    "Your previous reply was cut off. Continue it from exactly where it stopped, as if "
    "nothing had happened: do not repeat any of it, do not start over, do not comment."
)
WINDOW = 200  # characters of a continuation held back to look for a repeat


def continuation_request(
    request: ProviderRequest, text_so_far: str, *, prefill: bool
) -> ProviderRequest:
    """``request`` extended so that the next provider continues ``text_so_far``.

    The model is left to the provider's default (the request's names the first's). A
    prefill ends without trailing whitespace: Anthropic refuses it, and the trimmer drops
    the space the continuation then starts with."""
    turns: tuple[Message, ...]
    if prefill:
        turns = (Message(role="assistant", content=text_so_far.rstrip()),)
    else:
        turns = (
            Message(role="assistant", content=text_so_far),
            Message(role="user", content=CONTINUE_INSTRUCTION),
        )
    return replace(request, messages=(*request.messages, *turns), model=None)


@dataclass(frozen=True, slots=True)
class Cut:
    """A stream that failed after text: the provider that failed and the text sent."""

    provider: str
    text: str

    def announcement(self, to: str) -> dict[str, Any]:
        """The ``metadata`` payload before the continuation's first event."""
        return {"failover": {"from": self.provider, "to": to, "at_chars": len(self.text)}}

    async def trimmed(
        self, events: AsyncIterator[ProviderEvent]
    ) -> AsyncGenerator[ProviderEvent, None]:
        """A continuation's events with what it repeats of the text dropped; closing this
        closes ``events`` (and the upstream request)."""
        trimmer = OverlapTrimmer(self.text)
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    if text := trimmer.feed(event.text):
                        yield TextDelta(text)
                    continue
                if isinstance(event, Finish) and (rest := trimmer.flush()):
                    yield TextDelta(rest)
                yield event
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()


class OverlapTrimmer:
    """Feed a continuation's text deltas; get back what to send, without the repeat.

    ``feed()`` returns "" while it holds text back (up to ``WINDOW`` characters, or the
    whole text so far when shorter); ``flush()`` at the end of the continuation returns
    what is still held. Nothing is added: where the text so far was cut at a word's end
    and the continuation starts the next word without a space, the join has none (the
    text alone cannot tell that from a word cut in the middle).
    """

    def __init__(self, before: str, *, window: int = WINDOW) -> None:
        self._before = before
        self._want = max(min(len(before), window), 1)
        self._held = ""
        self._mode = "holding"  # then "skipping" (a restart being dropped) or "passing"
        self._at = 0  # while skipping: how much of ``before`` was repeated
        self.trimmed = 0  # characters dropped, for the failover's metadata and logs

    def feed(self, text: str) -> str:
        if self._mode == "passing":
            return text
        if self._mode == "skipping":
            return self._skip(text)
        self._held += text
        return self._decide() if len(self._held) >= self._want else ""

    def flush(self) -> str:
        return self._decide() if self._mode == "holding" else ""

    def _decide(self) -> str:
        held, before = self._held, self._before
        self._held = ""
        if held and len(held) < len(before) and before.startswith(held):
            self._mode, self._at = "skipping", len(held)  # it starts over: drop the repeat
            self.trimmed = len(held)
            return ""
        overlap = _overlap(before, held)
        self._mode = "passing"
        self.trimmed = overlap
        return held[overlap:]

    def _skip(self, text: str) -> str:
        before, at = self._before, self._at
        i = 0
        while i < len(text) and at < len(before) and text[i] == before[at]:
            i, at = i + 1, at + 1
        self._at = at
        self.trimmed += i
        if i < len(text):  # diverged, or the whole text was repeated: the rest is new
            self._mode = "passing"
            return text[i:]
        return ""


def _overlap(before: str, held: str) -> int:
    """The longest k such that ``held`` starts with the last k characters of ``before``,
    where those start a word of ``before`` (a coincidence inside a word is not a repeat),
    or are whitespace only."""
    for k in range(min(len(before), len(held)), 0, -1):
        if not before.endswith(held[:k]):
            continue
        starts_word = k == len(before) or not (_wordy(before[-k - 1]) and _wordy(before[-k]))
        if starts_word or held[:k].isspace():
            return k
    return 0


def _wordy(char: str) -> bool:
    """A letter or digit of a script that separates words with spaces."""
    return bool(char) and char.isascii() and char.isalnum()
