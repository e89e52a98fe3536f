"""Rich replies the provider tests share: interleaved reasoning and two parallel calls,
a cited answer, a refusal."""

from __future__ import annotations

import base64

from tests.providers.wire import Call, Cite, Redacted, Refuse, Say, Script, Think

SIGNATURE = "c2lnbmVkLXRoaW5raW5n"  # base64: Gemini's signatures are bytes on the wire
CALL_SIGNATURE = base64.b64encode(b"thought-signature").decode()

TOOL_LOOP = Script(
    items=(
        Think("Two cities, so two calls.", signature=SIGNATURE),
        Say("Checking both. "),
        Think("Oslo first, then Lima.", signature=SIGNATURE),
        Call("call_a", "get_weather", '{"city": "Oslo"}', signature=CALL_SIGNATURE),
        Call("call_b", "get_weather", '{"city": "Lima", "days": 2}'),
    ),
    input_tokens=20,
    output_tokens=30,
    cached_tokens=5,
    reasoning_tokens=12,
)
CITED = Script(
    items=(Say("Oslo is cold today.", cites=(Cite("https://example.com/oslo", "Oslo", "cold"),)),)
)
REFUSED = Script(items=(Refuse("I can't help with that."),))
REDACTED = Script(items=(Redacted("ZW5jcnlwdGVkLXJlYXNvbmluZw=="), Say("Done.")))
