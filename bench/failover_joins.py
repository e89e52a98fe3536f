"""How well failover's trimmer joins a cut text and its continuation, by continuation style.

    .venv/bin/python bench/failover_joins.py

A paragraph is cut after every character in turn (as a provider failing mid-stream would
leave it), and each style of continuation a model may produce is fed to the
OverlapTrimmer in 7-character deltas. A join is exact when the text the client ends with
is the paragraph. Styles:

- clean: exactly the rest (what a prefilled model does at best);
- repeat-word: restarts at the word the cut fell in (or the word before a cut at a space);
- repeat-3-words: restarts three words before the cut;
- restart: the whole answer again from the beginning;
- no-space: the rest without its leading whitespace (an instruction-following model
  starting "its" next word);
- rephrased: starts over with a different first word, then the same text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.providers.continuation import OverlapTrimmer

PARAGRAPH = (
    "Streaming lets a reader start before the answer is done. Each chunk carries a "
    "sequence number, so a client that reconnects asks for what it missed, and nothing "
    "is shown twice. A cancel stops the provider at once; the server frees what it held."
)


def word_start(text: str, at: int) -> int:
    at = max(at, 0)
    while at > 0 and not text[at - 1].isspace():
        at -= 1
    return at


STYLES: dict[str, Callable[[str, int], str]] = {
    "clean": lambda t, at: t[at:],
    "repeat-word": lambda t, at: t[word_start(t, at if not t[at - 1].isspace() else at - 1) :],
    "repeat-3-words": lambda t, at: t[word_start(t, word_start(t, word_start(t, at) - 1) - 1) :],
    "restart": lambda t, at: t,
    "no-space": lambda t, at: t[at:].lstrip(),
    "rephrased": lambda t, at: "Well, " + t,
}


def joined(text: str, at: int, continuation: str) -> str:
    trimmer = OverlapTrimmer(text[:at])
    pieces = [continuation[i : i + 7] for i in range(0, len(continuation), 7)]
    return text[:at] + "".join(trimmer.feed(p) for p in pieces) + trimmer.flush()


def main() -> int:
    cuts = range(1, len(PARAGRAPH))
    print(f"{len(cuts)} cut points in a {len(PARAGRAPH)}-character paragraph:")
    for style, continuation in STYLES.items():
        exact = sum(joined(PARAGRAPH, at, continuation(PARAGRAPH, at)) == PARAGRAPH for at in cuts)
        print(f"  {style:<15} {exact:4d} exact joins ({100 * exact / len(cuts):5.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
