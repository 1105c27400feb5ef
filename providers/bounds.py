"""A safe upper bound of a request's prompt tokens, for budget holds whatever the vendor's tokenizer.

Every tokenizer the vendors use (byte-level BPE, SentencePiece with byte fallback) spends at least one byte
of UTF-8 per token, so the UTF-8 length of everything sent bounds the tokens from above: message text, tool
calls and their arguments, names, and the whole tools JSON (schemas under `$defs`, `additionalProperties`
and every other key included). What is not text is bounded by a fixed allowance: an image by the most any
vendor charges for one, and each message and the request by their framing. The estimate that routing ranks
and fits models by (providers.tokens) stays separate: this bound only sizes the hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

# OpenAI's high-detail images top out near 1,500 tokens, Claude's near 1,600, Gemini's at 258 per tile.
IMAGE_TOKENS_BOUND = 2_000
MESSAGE_FRAMING_BOUND = 16  # role markers, separators, name: OpenAI's cookbook counts 3-4
REQUEST_FRAMING_BOUND = 64  # reply priming, tool-use system preambles


IMAGE_TYPES = frozenset({"image_url", "input_image", "image"})


def value_bound(value: Any) -> int:
    """The UTF-8 length of a JSON value as sent (keys, strings and punctuation), an image as its allowance."""
    if isinstance(value, str):
        return len(value.encode()) + 2
    if isinstance(value, Mapping):
        if value.get("type") in IMAGE_TYPES:
            return IMAGE_TOKENS_BOUND  # the picture's bytes are not its tokens
        return 2 + sum(value_bound(str(key)) + 1 + value_bound(item) + 1 for key, item in value.items())
    if isinstance(value, list | tuple):
        return 2 + sum(value_bound(item) + 1 for item in value)
    return len(orjson.dumps(value, default=str))


def prompt_tokens_bound(
    messages: Iterable[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    native: Mapping[str, Any] | None = None,
) -> int:
    """Messages and tools as sent; a native body (a door's own dialect) counts whole, since it can carry
    more than the canonical form keeps (thinking blocks, server tools, cache markers)."""
    total = REQUEST_FRAMING_BOUND
    for message in messages:
        total += MESSAGE_FRAMING_BOUND + value_bound(dict(message))
    if tools:
        total += value_bound(list(tools))
    if native is not None:
        total = max(total, REQUEST_FRAMING_BOUND + value_bound(dict(native)))
    return total


def inputs_tokens_bound(inputs: Sequence[str] | Sequence[Sequence[int]]) -> int:
    """Embedding inputs as sent: a text by its UTF-8 length (plus an end-of-text marker), a token array
    by its length, exactly."""
    return REQUEST_FRAMING_BOUND + sum(
        len(item.encode()) + 1 if isinstance(item, str) else len(item) for item in inputs
    )
