"""How `tokenmux chat` prints the events of PROTOCOL.md section 9, which the server does not
send yet: envelopes built per the protocol, rendered with colors on."""

from __future__ import annotations

import io
from typing import Any

from tokenmux import Client
from tokenmux.chat import Chat, Renderer
from tokenmux.events import parse_event

DIM, RESET, CYAN = "\x1b[2m", "\x1b[0m", "\x1b[36m"


def envelope(seq: int, type_: str, **data: Any) -> dict[str, Any]:
    return {"type": type_, "session": "s", "seq": seq, "timestamp": 1, "data": data}


async def test_reasoning_is_dimmed_and_tool_calls_get_lines_of_their_own() -> None:
    out = io.StringIO()
    render = Renderer(Chat(Client(), out, color=True), began=0.0)
    envelopes = [
        envelope(1, "reasoning_chunk", content="Think", index=0, accumulated_length=5),
        envelope(2, "reasoning_chunk", content="ing.", index=1, accumulated_length=9),
        envelope(3, "content_chunk", content="Let me look.", index=0, accumulated_length=12),
        envelope(4, "tool_call_start", id="c1", name="weather", index=0),
        envelope(5, "tool_call_delta", id="c1", arguments_delta='{"city":'),
        envelope(6, "tool_call_end", id="c1", name="weather", arguments={"city": "Paris"}),
        envelope(7, "source", url="https://example.org/w", title="Weather"),
        envelope(8, "metadata", finish_reason="tool_calls"),
        envelope(9, "stream_end", reason="complete", chunks=1,
                 usage={"input_tokens": 4, "output_tokens": 20}),
    ]  # fmt: skip
    for at, raw in enumerate(envelopes, 1):
        render.show(parse_event(raw), now=at * 0.1)
    render.close()
    assert out.getvalue() == (
        f"{DIM}Thinking.{RESET}\n"
        "Let me look.\n"
        f'{CYAN}⚙ weather …{RESET}\n{CYAN}⚙ weather({{"city": "Paris"}}){RESET}\n'
        f"{DIM}[1] Weather · https://example.org/w{RESET}\n"
        f"{DIM}TTFT 100 ms · 20 tokens · 25.0 tokens/s · 0.90 s{RESET}\n"
    )


async def test_unparsed_tool_arguments_and_refusals_are_shown_plainly() -> None:
    out = io.StringIO()
    render = Renderer(Chat(Client(), out), began=0.0)
    for raw in (
        envelope(1, "tool_call_end", id="c", name="f", arguments=None,
                 arguments_text='{"a":', error="invalid_json"),
        envelope(2, "metadata", refusal="I can't help with that."),
        envelope(3, "stream_end", reason="complete", chunks=0),
    ):  # fmt: skip
        render.show(parse_event(raw), now=1.0)
    render.close()
    assert out.getvalue() == (
        "⚙ f('{\"a\":' (invalid_json))\nrefused: I can't help with that.\n1.00 s\n"
    )
