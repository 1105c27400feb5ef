"""Provider-neutral request/response dataclasses and the adapter interface every vendor module implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Where and how to call one provider. `base_url` follows the vendor SDK's convention."""

    name: str  # "openai" | "anthropic" | "google" | "deepseek"
    base_url: str
    api_key: str | None
    timeout_s: float = 60.0


@dataclass(slots=True)
class ChatRequest:
    """An OpenAI-format chat request, already validated, for one upstream model."""

    model: str  # the upstream model id (catalog model_id, never an alias)
    messages: list[dict[str, Any]]  # OpenAI message dicts (system/developer/user/assistant/tool)
    max_tokens: int | None = None  # output cap (from max_tokens or max_completion_tokens)
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    stream: bool = False
    # The client's own body in the vendor's dialect (Anthropic Messages, OpenAI Responses), sent as it is but
    # for `model` (and what the router must have, such as usage in streams); None: translate the fields above.
    native: dict[str, Any] | None = None
    native_headers: dict[str, str] = field(default_factory=dict)  # e.g. anthropic-beta, forwarded


@dataclass(slots=True)
class Usage:
    """Token counts in OpenAI's meaning: prompt_tokens include cached ones, completion includes reasoning."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Prompt tokens written to the cache (Anthropic `cache_creation_input_tokens`, priced above plain input);
    # like cached_tokens, a subset of prompt_tokens. 0 for vendors that do not bill cache writes.
    cache_write_tokens: int = 0
    # The part of cache_write_tokens written with a 1-hour TTL (Anthropic `ephemeral_1h_input_tokens`), which
    # costs more than the default 5-minute writes; the rest of cache_write_tokens are 5-minute writes.
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ChatResult:
    content: str | None
    finish_reason: str  # OpenAI vocabulary: stop | length | tool_calls | content_filter
    usage: Usage
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI shape
    upstream_model: str | None = None
    raw: dict[str, Any] | None = None  # the vendor's body, for a native request


@dataclass(slots=True)
class StreamDelta:
    """One piece of a stream, already in OpenAI terms. Usage arrives on a delta of its own (or the last)."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI chunk shape, with "index"
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: bytes | None = None  # native streams: the vendor's SSE event as received ("event: …\ndata: …\n\n")


@dataclass(slots=True)
class EmbeddingRequest:
    """An OpenAI-format embeddings request for one upstream model, already validated."""

    model: str  # the upstream model id (catalog model_id, never an alias)
    inputs: list[str] | list[list[int]]  # 1..2048 texts, or token arrays (OpenAI only)
    dimensions: int | None = None
    user: str | None = None


@dataclass(slots=True)
class EmbeddingResult:
    """One vector per input, in input order, each as little-endian float32 bytes (the base64 wire form)."""

    vectors: list[bytes]
    usage: Usage | None  # None: the vendor reports no counts (Gemini); the router estimates them
    upstream_model: str | None = None
    usage_estimated: bool = False  # set by the router when usage is its own estimate

    @property
    def sizes(self) -> list[int]:
        return [len(vector) // 4 for vector in self.vectors]


@dataclass(slots=True)
class ProviderError(Exception):
    """A failed provider call, classified for the router's retry and fallback logic."""

    message: str
    status: int | None = None  # upstream HTTP status; None for timeouts and connection errors
    retryable: bool = False
    retry_after_s: float | None = None
    kind: str = "http"  # http | timeout | connection | protocol
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class Adapter(Protocol):
    name: str

    async def complete(self, config: ProviderConfig, request: ChatRequest) -> ChatResult: ...

    def stream(self, config: ProviderConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]: ...


class EmbeddingAdapter(Protocol):
    name: str
    takes_token_arrays: bool  # token arrays as input (OpenAI); others take text only

    async def embed(self, config: ProviderConfig, request: EmbeddingRequest) -> EmbeddingResult: ...
