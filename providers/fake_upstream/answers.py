"""Vendor-neutral fake answers: deterministic text, token counts, truncation, tool calls and stream pieces.

The answer follows the request, the same request always getting the same answer and counts:
- a tool call's arguments are an instance of the tool's JSON schema (see `schemas.py`), `{"location": "Paris"}`
  for a tool whose schema says nothing;
- asked for JSON (`Prompt.response_format`), the text is JSON: `{"answer": ...}`, or an instance of the schema;
- the text is whole sentences, one output token a word; cut by max_tokens, it ends at the last sentence that
  fits (at a word only when not even the first one does, as a real model would);
- after a tool result, the answer is text that quotes the result, never another tool call (unless forced),
  so an agent loop ends.
"""

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.fake_upstream.rules import NO_FAULT, Fault
from providers.fake_upstream.schemas import Hints, instance, is_open_object, name_words, places_in

# Models that report reasoning tokens by default (OpenAI o-series and gpt-5, Gemini 2.5 "thoughts").
REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5", "gemini-2.5")
DEFAULT_REASONING_TOKENS = 10
# The arguments of a tool whose schema names no property (the fake's only arguments before it read schemas).
OPEN_TOOL_KEY = "location"
TOOL_TRIGGER_WORD = "weather"
# The gateway's Anthropic adapter asks for JSON through a tool of this name (providers/adapters/anthropic.py).
JSON_TOOL_NAME = "json_tool_call"
# Words of a tool's name too common to say the user asked for that tool.
GENERIC_NAME_WORDS = frozenset(
    {"get", "set", "fetch", "find", "list", "make", "create", "update", "delete", "run", "call"}
    | {"tool", "tools", "func", "function", "the", "and", "for", "with", "from", "api", "data"}
    | {"info", "current", "new", "all"}
)
USER_WORDS = re.compile(r"[a-z0-9]+")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
EXCERPT_CHARS = 60
RESULT_EXCERPT_CHARS = 100
QUERY_CHARS = 200
EXCERPT_TRIM = " ,;:.-"
# Whole sentences that pad an answer out to a `chunks` rule's number of pieces.
FILLER = [
    "The demo upstream answers the same request with the same words.",
    "Each word of the answer counts as one output token.",
    "A stream sends the answer in pieces of whole words.",
]
TOKENS_PER_MESSAGE = 3
CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """JSON asked for: "json_object" (any object), or "json_schema" (an instance of `schema`)."""

    kind: str
    schema: Any = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    name: str  # the tool's name, "" when the request does not tell
    text: str


@dataclass(slots=True)
class Prompt:
    """What a vendor request asks for, reduced to the few things the fake answer depends on."""

    model: str
    message_texts: list[str]  # one entry per message, system prompt included
    last_user_text: str = ""  # the plain text of the last user message with any (tool results excluded)
    last_is_user: bool = True
    tool_names: list[str] = field(default_factory=list)
    forced_tool: str | None = None  # tool_choice forces this function
    tools_disabled: bool = False  # tool_choice "none"
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI/DeepSeek stream_options.include_usage
    tool_schemas: dict[str, Any] = field(default_factory=dict)  # tool name -> its parameters' JSON schema
    response_format: ResponseFormat | None = None
    # The tool results of the last turn, when it hands results back.
    tool_results: list[ToolResult] = field(default_factory=list)


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
    tool_arguments: dict[str, Any] = field(default_factory=dict)
    arguments_json: str = "{}"  # tool_arguments as the compact JSON the wire formats send

    @property
    def is_tool_call(self) -> bool:
        return self.tool_name is not None

    @property
    def pieces(self) -> list[str]:
        """Stream content pieces: groups of words of the text, or fragments of the tool arguments."""
        if self.is_tool_call:
            return split_evenly(self.arguments_json, self.chunks or 2)
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


def last_text(texts: list[str]) -> str:
    """The last of some messages' texts that says anything (a tool-result turn has none of its own)."""
    return next((text for text in reversed(texts) if text.strip()), "")


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
    sentences = answer_sentences(prompt, fault)
    tool = _chosen_tool(prompt)
    if tool is not None:
        # A forced tool's name may be any JSON value: only a string names a schema.
        schema = prompt.tool_schemas.get(tool) if isinstance(tool, str) else None
        arguments = tool_arguments(schema, _hints(prompt, sentences), json_tool=tool == JSON_TOOL_NAME)
        arguments_json = orjson.dumps(arguments).decode()
        return Answer(
            text="",
            finish="tool",
            output_tokens=len(f"{tool} {arguments_json}".split()),
            tool_name=tool,
            tool_arguments=arguments,
            arguments_json=arguments_json,
            **counts,
        )
    sentences = _padded(sentences, fault.chunks)
    room = None if prompt.max_tokens is None else prompt.max_tokens - reasoning
    if prompt.response_format is not None:
        text, finish = _json_text(prompt.response_format, sentences, _hints(prompt, sentences), room)
    else:
        text, finish = _fit(sentences, room)
    return Answer(text=text, finish=finish, output_tokens=len(text.split()), **counts)


def answer_sentences(prompt: Prompt, fault: Fault = NO_FAULT) -> list[str]:
    """The answer as whole sentences: a rule's `answer`, or one that names the model and answers the last turn."""
    if fault.answer:
        return [" ".join(s.split()) for s in SENTENCE_BREAK.split(fault.answer.strip()) if s.strip()]
    first = f"This is a fake answer from {prompt.model}."
    if prompt.tool_results:
        return [first, *(_on_result(result) for result in prompt.tool_results)]
    question = _excerpt(prompt.last_user_text, EXCERPT_CHARS)
    if not question:
        return [first]
    return [first, f'You {"asked" if question.endswith("?") else "wrote"} "{question}".']


def _hints(prompt: Prompt, sentences: list[str]) -> Hints:
    """What schema strings are filled with; built only for a tool call or JSON (it costs microseconds)."""
    return Hints(
        places=places_in(prompt.last_user_text),
        query=_excerpt(prompt.last_user_text, QUERY_CHARS, mark_cut=False),
        answer=" ".join(sentences),
    )


def tool_arguments(schema: Any, hints: Hints, *, json_tool: bool = False) -> dict[str, Any]:
    """Arguments that validate against the tool's schema; the JSON tool's are the structured answer."""
    if json_tool:
        value = json_value(ResponseFormat("json_schema", schema), hints)
    elif is_open_object(schema):
        value = {OPEN_TOOL_KEY: hints.places[0]}
    else:
        value = instance(schema, hints)
    return value if isinstance(value, dict) else {}


def json_value(response_format: ResponseFormat, hints: Hints) -> Any:
    """The structured answer: `{"answer": ...}` for any object, else an instance of the schema."""
    if response_format.kind == "json_object" or is_open_object(response_format.schema):
        return {"answer": hints.answer}
    return instance(response_format.schema, hints)


def _on_result(result: ToolResult) -> str:
    name = result.name or "tool"
    excerpt = _excerpt(result.text, RESULT_EXCERPT_CHARS)
    return f'Based on the {name} result: "{excerpt}".' if excerpt else f"The {name} tool returned nothing."


def _excerpt(text: str, limit: int, *, mark_cut: bool = True) -> str:
    """The start of a text on one line, cut at a word within `limit` characters (marked with "…")."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text.rstrip(EXCERPT_TRIM) if mark_cut else text
    cut = text[:limit]
    if text[limit] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    cut = cut.rstrip(EXCERPT_TRIM + "!?")
    return cut + "…" if mark_cut else cut


def _padded(sentences: list[str], chunks: int | None) -> list[str]:
    """Enough whole sentences for a `chunks` rule to stream that many pieces of at least a word each."""
    if not chunks:
        return sentences
    words = sum(len(s.split()) for s in sentences)
    padded = list(sentences)
    while words < chunks:
        filler = FILLER[(len(padded) - len(sentences)) % len(FILLER)]
        padded.append(filler)
        words += len(filler.split())
    return padded


def _fit(sentences: list[str], room: int | None) -> tuple[str, str]:
    """The sentences that fit in `room` words, and the finish reason: "length" if any had to go."""
    text = " ".join(sentences)
    words = text.split()
    if room is None or len(words) <= room:
        return text, "stop"
    kept: list[str] = []
    used = 0
    for sentence in sentences:
        used += len(sentence.split())
        if used > room:
            break
        kept.append(sentence)
    if kept:
        return " ".join(kept), "length"
    return " ".join(words[:room]), "length"  # not even the first sentence fits


def _json_text(
    response_format: ResponseFormat, sentences: list[str], hints: Hints, room: int | None
) -> tuple[str, str]:
    """JSON text in `room` words: an `{"answer": ...}` object keeps the sentences that fit; JSON that does not
    fit at all is cut at a word (no longer valid JSON, as a real model's), finish "length"."""
    if response_format.kind == "json_object" or is_open_object(response_format.schema):
        for count in range(len(sentences), 0, -1):
            text = _dumps({"answer": " ".join(sentences[:count])})
            if room is None or len(text.split()) <= room:
                return text, "stop" if count == len(sentences) else "length"
        text = _dumps({"answer": " ".join(sentences)})
    else:
        text = _dumps(instance(response_format.schema, hints))
    words = text.split()
    if room is None or len(words) <= room:
        return text, "stop"
    return " ".join(words[:room]), "length"


def _dumps(value: Any) -> str:
    # One space between words, so the stream's pieces (groups of words) join back into exactly this text.
    return " ".join(json.dumps(value, ensure_ascii=False).split())


def _chosen_tool(prompt: Prompt) -> str | None:
    if prompt.tools_disabled or not prompt.tool_names:
        return None
    if prompt.forced_tool:
        return prompt.forced_tool
    json_tool = JSON_TOOL_NAME if JSON_TOOL_NAME in prompt.tool_names else None
    if prompt.tool_results or not prompt.last_is_user:
        return json_tool  # the answer to a tool result: structured if JSON was asked for through the tool
    own = [name for name in prompt.tool_names if name != JSON_TOOL_NAME]
    return _asked_tool(own, prompt.last_user_text) or json_tool


def _asked_tool(tool_names: list[str], text: str) -> str | None:
    """The first tool a word of whose name the user's text uses (weather: the first tool), if any."""
    said = set(USER_WORDS.findall(text.lower()))
    for name in tool_names:
        for word in name_words(name):
            if len(word) < 3 or word in GENERIC_NAME_WORDS:
                continue
            if any(used == word or (len(word) >= 4 and used.startswith(word)) for used in said):
                return name
    if tool_names and TOOL_TRIGGER_WORD in text.lower():
        return tool_names[0]
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
