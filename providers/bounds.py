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


def _json_bytes(value: Any) -> int:
    return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str))


def _content_bound(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content.encode())
    if not isinstance(content, list):
        return _json_bytes(content)
    total = 0
    for part in content:
        if isinstance(part, Mapping) and part.get("type") in ("image_url", "input_image", "image"):
            total += IMAGE_TOKENS_BOUND  # the picture's bytes are not its tokens
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            total += len(part["text"].encode())
        else:
            total += _json_bytes(part)
    return total


def prompt_tokens_bound(
    messages: Iterable[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
) -> int:
    total = REQUEST_FRAMING_BOUND
    for message in messages:
        total += MESSAGE_FRAMING_BOUND + _content_bound(message.get("content"))
        for key in ("name", "tool_call_id"):
            if isinstance(message.get(key), str):
                total += len(message[key].encode())
        if message.get("tool_calls"):
            total += _json_bytes(message["tool_calls"])
    if tools:
        total += _json_bytes(list(tools))
    return total
