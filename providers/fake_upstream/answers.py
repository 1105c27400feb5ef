"""Vendor-neutral fake answers: deterministic text, token counts, truncation, tool calls and stream pieces."""

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.fake_upstream.rules import NO_FAULT, Fault

# Models that report reasoning tokens by default (OpenAI o-series and gpt-5, Gemini 2.5 "thoughts").
REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5", "gemini-2.5")
DEFAULT_REASONING_TOKENS = 10
TOOL_ARGUMENTS: dict[str, Any] = {"location": "Paris"}
TOOL_ARGUMENTS_JSON = orjson.dumps(TOOL_ARGUMENTS).decode()
TOOL_TRIGGER_WORD = "weather"
FILLER = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"]
EXCERPT_CHARS = 40
TOKENS_PER_MESSAGE = 3
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class Prompt:
    """What a vendor request asks for, reduced to the few things the fake answer depends on."""

    model: str
    message_texts: list[str]  # one entry per message, system prompt included
    last_user_text: str = ""  # the plain text of the last user message (tool results excluded)
    last_is_user: bool = True
    tool_names: list[str] = field(default_factory=list)
    forced_tool: str | None = None  # tool_choice forces this function
    tools_disabled: bool = False  # tool_choice "none"
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI/DeepSeek stream_options.include_usage


@dataclass(slots=True)
class Answer:
    model: str
    text: str  # "" for a tool call
    finish: str  # "stop" | "length" | "tool"
    prompt_tokens: int  # all input, cached included
    output_tokens: int  # visible output: the words of the answer
    reasoning_tokens: int = 0
    cached_tokens: int = 0  # cache reads, a subset of prompt_tokens
    cache_write_tokens: int = 0  # Anthropic cache creation, a subset of prompt_tokens
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written with a 1-hour TTL
    tool_name: str | None = None
    chunks: int | None = None  # stream the content in this many pieces (default: one per word)

    @property
    def is_tool_call(self) -> bool:
        return self.tool_name is not None

    @property
    def pieces(self) -> list[str]:
        """Stream content pieces: groups of words of the text, or fragments of the tool arguments."""
        if self.is_tool_call:
            return split_evenly(TOOL_ARGUMENTS_JSON, self.chunks or 2)
        words = self.text.split()
        return group_words(words, self.chunks or len(words))


def content_text(content: Any, *, nested: bool = True) -> str:
    """The text of a message's content: a string, or parts carrying "text" (and, if nested, "content")."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            text = part.get("text")
            if isinstance(text, str):
                texts.append(text)
            elif nested and "content" in part:
                texts.append(content_text(part["content"]))
    return "\n".join(texts)


def count_prompt_tokens(message_texts: list[str], counting: str = "chars") -> int:
    if counting == "words":
        return 10 + sum(len(text.split()) for text in message_texts)
    chars = sum(len(text) for text in message_texts)
    return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(message_texts)


def compose_answer(prompt: Prompt, fault: Fault = NO_FAULT) -> Answer:
    """The answer to a prompt: the same prompt and rules always give the same text and counts."""
    prompt_tokens = count_prompt_tokens(prompt.message_texts, fault.prompt_counting)
    cached = min(fault.cached_tokens, prompt_tokens)
    written = min(fault.cache_write_tokens, prompt_tokens - cached)
    # Like the vendors, the output limit covers reasoning too: thinking leaves the rest for the answer.
    reasoning = _reasoning_tokens(prompt.model, fault)
    if prompt.max_tokens is not None:
        reasoning = min(reasoning, max(prompt.max_tokens - 1, 0))
    counts: dict[str, Any] = {
        "model": prompt.model,
        "prompt_tokens": prompt_tokens,
        "cached_tokens": cached,
        "cache_write_tokens": written,
        "cache_write_1h_tokens": min(fault.cache_write_1h_tokens, written),
        "reasoning_tokens": reasoning,
        "chunks": fault.chunks,
    }
    tool = _chosen_tool(prompt)
    if tool is not None:
        return Answer(
            text="",
            finish="tool",
            output_tokens=len(f"{tool} {TOOL_ARGUMENTS_JSON}".split()),
            tool_name=tool,
            **counts,
        )
    excerpt = prompt.last_user_text[:EXCERPT_CHARS]
    words = (fault.answer or f"This is a fake answer from {prompt.model} to: {excerpt}").split()
    if fault.chunks and len(words) < fault.chunks:
        words += [FILLER[i % len(FILLER)] for i in range(fault.chunks - len(words))]
    finish = "stop"
    room = None if prompt.max_tokens is None else prompt.max_tokens - reasoning
    if room is not None and room < len(words):
        words = words[:room]
        finish = "length"
    return Answer(
        text=" ".join(words),
        finish=finish,
        output_tokens=len(words),
        **counts,
    )


def _chosen_tool(prompt: Prompt) -> str | None:
    if prompt.tools_disabled or not prompt.tool_names:
        return None
    if prompt.forced_tool:
        return prompt.forced_tool
    if prompt.last_is_user and TOOL_TRIGGER_WORD in prompt.last_user_text.lower():
        return prompt.tool_names[0]
    return None


def _reasoning_tokens(model: str, fault: Fault) -> int:
    if fault.reasoning_tokens is not None:
        return fault.reasoning_tokens
    return DEFAULT_REASONING_TOKENS if model.startswith(REASONING_MODEL_PREFIXES) else 0


def group_words(words: list[str], n: int) -> list[str]:
    """Split words into at most n nearly equal groups whose concatenation is exactly `" ".join(words)`."""
    bounds = _even_slices(len(words), min(n, len(words)))
    return [(" " if i else "") + " ".join(words[part]) for i, part in enumerate(bounds)]


def split_evenly(text: str, n: int) -> list[str]:
    """Split a string into at most n nearly equal slices."""
    return [text[part] for part in _even_slices(len(text), max(1, min(n, len(text))))]


def _even_slices(total: int, n: int) -> list[slice]:
    if n <= 0:
        return []
    size, extra = divmod(total, n)
    slices: list[slice] = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        slices.append(slice(start, end))
        start = end
    return slices
