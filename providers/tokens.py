"""Prompt token estimation: tiktoken with offline encodings for OpenAI models, else a labelled estimate."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tiktoken

from providers.token_encodings import CL100K_BASE, O200K_BASE, encoding_name_for, get_encoding

APPROX = "approx"

# Chat framing, as in OpenAI's cookbook "How to count tokens with tiktoken" (gpt-3.5-turbo-0613 and later,
# gpt-4*, gpt-4o*): every message costs <|start|>{role/name}\n{content}<|end|>\n = 3 tokens plus the
# encoded role and content; a `name` costs its tokens plus 1; the reply is primed with
# <|start|>assistant<|message|> = 3 tokens.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

# Images: OpenAI bills a low-detail image at a flat 85 tokens; high/auto detail is 85 + 170 per 512 px tile
# of the resized image. We never download or decode the image, so high/auto uses the 1024x1024 case
# (resized to 768x768 = 4 tiles): 85 + 4 * 170 = 765 tokens.
IMAGE_TOKENS_LOW_DETAIL = 85
IMAGE_TOKENS_HIGH_DETAIL = 765

# Tool definitions, after the cookbook's num_tokens_for_tools (fitted by OpenAI against the API's
# usage.prompt_tokens): per function 7 tokens on o200k_base models (10 on cl100k_base), 3 to open the
# property list, 3 per property, -3 + 3 per item for an enum, 12 at the end of the tool block.
_TOOL_FUNC_INIT = {O200K_BASE: 7, CL100K_BASE: 10}
_TOOL_PROP_INIT = 3
_TOOL_PROP_KEY = 3
_TOOL_ENUM_INIT = -3
_TOOL_ENUM_ITEM = 3
_TOOL_FUNC_END = 12

# Approximation for models whose tokenizer is not available offline (method "approx"):
#   tokens = ceil(ratio x (chat framing as for OpenAI + o200k_base tokens of every text)),
# i.e. the OpenAI count of the same request with o200k_base (the most recent OpenAI BPE, a 200k vocabulary
# close to modern vendors' tokenizers), scaled once by a per-provider ratio and rounded up. Ratios lean
# high on purpose: the estimate feeds context-fit checks and budget reservations, where overestimating is
# the safe side. Calibration (English prose; o200k_base measures ~4.0-4.3 characters per token):
#   anthropic 1.20: no published ratio or offline tokenizer (only a network count endpoint); Claude's
#                   tokenizer yields ~1.1-1.2x OpenAI's count on English, more on code and non-Latin text.
#   google/gemini 1.00: Google publishes "a token is about 4 characters" for Gemini, i.e. o200k_base's own
#                   density; its 256k SentencePiece vocabulary counts within a few percent of o200k_base.
#   deepseek 1.10: DeepSeek publishes "1 English character ~ 0.3 token" (3.3 characters per token, a
#                   deliberately round upper bound, ~1.25x o200k_base); measured, its 128k BPE yields
#                   ~1.0-1.1x o200k_base.
#   anything else 1.10.
# Routing reserves approximate counts with a further 15% margin (APPROX_PROMPT_MARGIN in
# routing.pipeline.plan), so reservations use 1.38x, 1.15x and 1.27x o200k_base: each at or above
# the published figures. Against the fake upstream (ceil(characters / 4) + 3 per message, for every
# vendor) the cookbook conversation in providers/tests/test_tokens.py counts 129, o200k_base 124: the
# approximation gives 149 (anthropic), 124 (gemini, 4% under, within the margin) and 137 (deepseek).
# If even o200k_base cannot be loaded, the base count is ceil(characters / 4) (OpenAI's rule of thumb of
# ~4 characters per token of English) before the same ratio.
APPROX_RATIOS: dict[str, float] = {
    "anthropic": 1.20,
    "google": 1.00,
    "gemini": 1.00,
    "deepseek": 1.10,
}
APPROX_DEFAULT_RATIO = 1.10
APPROX_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class TokenCount:
    """A token count and how it was obtained: "tiktoken:<encoding>" (exact tokenizer) or "approx"."""

    tokens: int
    method: str

    @property
    def is_exact_tokenizer(self) -> bool:
        return self.method != APPROX


class _Counter:
    """Counts text for one (model, provider): exact with its encoding, or the scaled approximation."""

    def __init__(self, model_id: str, provider: str) -> None:
        name = encoding_name_for(model_id, provider)
        self.encoding_name = name
        encoding = get_encoding(name) if name is not None else None
        self.exact = encoding is not None
        self.method = f"tiktoken:{name}" if encoding is not None else APPROX
        # Structural constants (tool overhead) follow the model's own encoding where known.
        self.tool_encoding_name = name or O200K_BASE
        if encoding is not None:
            self.ratio = 1.0
            self._encoding: tiktoken.Encoding | None = encoding
        else:
            self.ratio = APPROX_RATIOS.get(provider.strip().lower(), APPROX_DEFAULT_RATIO)
            self._encoding = get_encoding(O200K_BASE)
        # What the unscaled count depends on: the encoding that reads the text and the one whose tool
        # constants apply. Counters with the same key count the same request to the same base.
        text_encoding = self._encoding.name if self._encoding is not None else "chars"
        self.base_key = (text_encoding, self.tool_encoding_name)

    def text(self, text: str) -> int:
        if not text:
            return 0
        if self._encoding is not None:
            # encode_ordinary: user text containing "<|endoftext|>" is plain text, not an error.
            return len(self._encoding.encode_ordinary(text))
        return math.ceil(len(text) / APPROX_CHARS_PER_TOKEN)

    def finish(self, base: int) -> int:
        # Scale once on the total so rounding up happens once, not per message.
        if self.ratio == 1.0:
            return base
        return math.ceil(base * self.ratio)


def encodings_for(models: Iterable[tuple[str, str]]) -> set[str]:
    """The encodings counting these (model id, provider) pairs reads with: a model's own, else o200k_base
    (the approximation's base)."""
    return {encoding_name_for(model_id, provider) or O200K_BASE for model_id, provider in models}


def count_text_tokens(text: str, model_id: str, provider: str) -> int:
    """Tokens in a bare string (no chat framing), for the given model."""
    counter = _Counter(model_id, provider)
    return counter.finish(counter.text(text))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _content_tokens(counter: _Counter, content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return counter.text(content)
    if not isinstance(content, list):
        return counter.text(_as_text(content))
    total = 0
    for part in content:
        if isinstance(part, str):
            total += counter.text(part)
            continue
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text":
            total += counter.text(_as_text(part.get("text")))
        elif kind in ("image_url", "image", "input_image"):
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else part.get("detail")
            total += IMAGE_TOKENS_LOW_DETAIL if detail == "low" else IMAGE_TOKENS_HIGH_DETAIL
        else:
            # Audio, files and future part types: the payload minus its type tag, as a rough guide.
            total += counter.text(_as_text({k: v for k, v in part.items() if k != "type"}))
    return total


def _tool_calls_tokens(counter: _Counter, tool_calls: Any) -> int:
    if not isinstance(tool_calls, list):
        return 0
    total = 0
    for call in tool_calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if isinstance(function, Mapping):
            total += counter.text(_as_text(function.get("name")))
            total += counter.text(_as_text(function.get("arguments")))
    return total


def _messages_base(counter: _Counter, messages: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += counter.text(_as_text(message.get("role")))
        total += _content_tokens(counter, message.get("content"))
        name = message.get("name")
        if name:
            total += counter.text(_as_text(name)) + TOKENS_PER_NAME
        total += _tool_calls_tokens(counter, message.get("tool_calls"))
    return total + REPLY_PRIMING_TOKENS


def _strip_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _tools_base(counter: _Counter, tools: Sequence[Mapping[str, Any]]) -> int:
    functions = [t.get("function", t) for t in tools if isinstance(t, Mapping)]
    functions = [f for f in functions if isinstance(f, Mapping)]
    if not functions:
        return 0
    func_init = _TOOL_FUNC_INIT.get(counter.tool_encoding_name, _TOOL_FUNC_INIT[O200K_BASE])
    total = 0
    for function in functions:
        total += func_init
        name = _as_text(function.get("name"))
        description = _strip_period(_as_text(function.get("description")))
        total += counter.text(f"{name}:{description}")
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if not isinstance(properties, Mapping) or not properties:
            continue
        total += _TOOL_PROP_INIT
        for key, prop in properties.items():
            total += _TOOL_PROP_KEY
            prop = prop if isinstance(prop, Mapping) else {}
            enum = prop.get("enum")
            if isinstance(enum, list):
                total += _TOOL_ENUM_INIT
                for item in enum:
                    total += _TOOL_ENUM_ITEM + counter.text(_as_text(item))
            p_type = _as_text(prop.get("type"))
            p_desc = _strip_period(_as_text(prop.get("description")))
            total += counter.text(f"{key}:{p_type}:{p_desc}")
            # The cookbook's formula ignores nested schemas; count them as JSON so they are not free.
            for nested_key in ("properties", "items", "anyOf", "oneOf", "allOf"):
                if nested_key in prop:
                    total += counter.text(_as_text(prop[nested_key]))
    return total + _TOOL_FUNC_END


def count_tools_tokens(tools: Sequence[Mapping[str, Any]] | None, model_id: str, provider: str) -> int:
    """Prompt tokens added by OpenAI-format tool definitions (the cookbook's num_tokens_for_tools rule)."""
    if not tools:
        return 0
    counter = _Counter(model_id, provider)
    return counter.finish(_tools_base(counter, tools))


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]],
    model_id: str,
    provider: str,
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    bases: dict[tuple[str, str], int] | None = None,
) -> TokenCount:
    """Prompt tokens of an OpenAI-format chat request (messages plus optional tool definitions).

    Framing follows OpenAI's cookbook: 3 tokens per message + its encoded role and content, +1 (and the
    name's tokens) per `name`, +3 to prime the reply. Text content parts are encoded; each image part
    counts a fixed 85 tokens at detail "low", else 765 (see IMAGE_TOKENS_HIGH_DETAIL). An assistant's
    tool_calls count their function names and argument strings. OpenAI models are counted with their
    own tiktoken encoding; other models get the labelled approximation described at APPROX_RATIOS.

    `bases`, one dict per request, keeps the unscaled count per encoding: counting the same messages for
    many models (every candidate of an optimized route) encodes them once per encoding, not once per model.
    """
    counter = _Counter(model_id, provider)
    base = bases.get(counter.base_key) if bases is not None else None
    if base is None:
        base = _messages_base(counter, messages)
        if tools:
            base += _tools_base(counter, tools)
        if bases is not None:
            bases[counter.base_key] = base
    return TokenCount(tokens=counter.finish(base), method=counter.method)


@dataclass(frozen=True)
class InputsCount:
    """Tokens of embedding inputs: their sum (what is billed) and the longest one (what must fit the model)."""

    total: int
    longest: int
    method: str


def count_input_tokens(
    inputs: Sequence[str] | Sequence[Sequence[int]], model_id: str, provider: str
) -> InputsCount:
    """Tokens of each embeddings input, with no chat framing: a token array counts its length exactly."""
    counter = _Counter(model_id, provider)
    counts = [
        len(item) if not isinstance(item, str) else counter.finish(counter.text(item)) for item in inputs
    ]
    return InputsCount(total=sum(counts), longest=max(counts, default=0), method=counter.method)


def decode_tokens(tokens: Sequence[int], model_id: str, provider: str) -> str | None:
    """The text of a token array in the model's own encoding; None when that is unknown or the ids are not its."""
    name = encoding_name_for(model_id, provider)
    encoding = get_encoding(name) if name is not None else None
    if encoding is None:
        return None
    try:
        return encoding.decode(list(tokens))
    except (KeyError, ValueError, OverflowError, TypeError):
        return None


def token_method(model_id: str, provider: str) -> str:
    """The method label count_message_tokens would report for this model."""
    return _Counter(model_id, provider).method
