"""failover: continue, the pure part: the continuation request and the overlap trimmer."""

from __future__ import annotations

import pytest

from server.protocol.envelope import Message
from server.providers.base import ProviderRequest
from server.providers.continuation import (
    CONTINUE_INSTRUCTION,
    OverlapTrimmer,
    continuation_request,
)

BEFORE = "The quick brown fox jumps over the la"


def join(before: str, pieces: list[str], *, window: int = 200) -> str:
    trimmer = OverlapTrimmer(before, window=window)
    return before + "".join(trimmer.feed(piece) for piece in pieces) + trimmer.flush()


@pytest.mark.parametrize(
    ("pieces", "joined"),
    [
        (["zy dog."], BEFORE + "zy dog."),  # a clean continuation
        (["the la", "zy dog."], BEFORE + "zy dog."),  # repeats the last words
        (["lazy dog."], BEFORE + "zy dog."),  # repeats the cut word whole
        ([BEFORE[:10], BEFORE[10:] + "zy dog."], BEFORE + "zy dog."),  # starts over
        (["over the lazy", " dog."], BEFORE + "zy dog."),
    ],
)
def test_what_a_continuation_repeats_is_dropped(pieces: list[str], joined: str) -> None:
    assert join(BEFORE, pieces) == joined


def test_a_restart_longer_than_the_window_is_dropped_as_it_streams() -> None:
    before = " ".join(f"word{i}" for i in range(100))  # 589 characters
    pieces = [before[i : i + 7] for i in range(0, len(before), 7)] + ["and more."]
    assert join(before, pieces, window=50) == before + "and more."


def test_a_coincidence_inside_a_word_is_not_a_repeat() -> None:
    assert join("It was fine", ["ne of them."]) == "It was finene of them."  # kept whole


def test_nothing_is_added_at_the_join() -> None:
    assert join("Hello world", ["Next words."]) == "Hello worldNext words."
    assert join("Hello world ", [" next"]) == "Hello world next"  # whitespace overlap
    assert join("Hello, ", ["world"]) == "Hello, world"


def test_a_short_continuation_is_flushed_at_its_end() -> None:
    trimmer = OverlapTrimmer(BEFORE)
    assert trimmer.feed("zy.") == ""
    assert trimmer.flush() == "zy."


def test_the_continuation_request() -> None:
    request = ProviderRequest(messages=(Message(role="user", content="Go"),), model="m1")
    asked = continuation_request(request, "Part one ", prefill=False)
    assert asked.model is None
    assert [(m.role, m.content) for m in asked.messages] == [
        ("user", "Go"), ("assistant", "Part one "), ("user", CONTINUE_INSTRUCTION)
    ]  # fmt: skip
    prefilled = continuation_request(request, "Part one ", prefill=True)
    assert [(m.role, m.content) for m in prefilled.messages][-1] == ("assistant", "Part one")
