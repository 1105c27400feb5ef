"""The canonical request and result every door parses into and renders from; the pipeline sees only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from providers.adapters.base import StreamDelta, Usage
from providers.pricing import Cost
from routing import engine
from routing.ratelimit import Limit

DOORS = ("chat", "messages", "responses", "embeddings")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: int
    api_key_id: int | None = None
    cache_group: str = ""
    team_id: int | None = None  # a team key's team: where its rate-limit counts live besides the key's
    # What the pipeline admits the request against (none: not limited here).
    rate_limits: tuple[Limit, ...] = ()


@dataclass(frozen=True, slots=True)
class Native:
    """A door's own body, for a model of the vendor that speaks the door's dialect (sent as the client sent it).

    `provider` is the vendor whose models get it (`anthropic` for /v1/messages, `openai` for /v1/responses);
    the adapter replaces only `model` (and forces what the router needs, e.g. usage in streams).
    """

    provider: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # forwarded vendor headers (anthropic-beta …)


@dataclass(frozen=True, slots=True)
class EmbeddingParams:
    """What an embeddings request asks for beyond its model (the door has validated it)."""

    inputs: list[str] | list[list[int]]  # texts, or token arrays; never empty, never mixed
    dimensions: int | None = None
    encoding_format: str = "float"  # "float" | "base64": how the door renders vectors, not what is asked
    user: str | None = None

    @property
    def token_arrays(self) -> bool:
        return bool(self.inputs) and not isinstance(self.inputs[0], str)


@dataclass(kw_only=True)
class CompletionInput:
    """One request in canonical form, whichever door it came through: OpenAI chat, or (with `embedding`
    set and no messages) an embeddings request, which the same stages plan, hold, call, record and cache."""

    messages: list[dict[str, Any]]
    door: str = "chat"
    model: str | None = None
    mode: str = engine.MODE_MANUAL
    models: list[str] | None = None
    provider_filter: list[str] | None = None
    fallbacks: list[str] = field(default_factory=list)
    max_cost: Decimal | None = None
    expected_output_tokens: int = engine.DEFAULT_EXPECTED_OUTPUT_TOKENS
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    stream: bool = False
    include_usage: bool = False
    cache_read: bool = True
    cache_write: bool = True
    budget_policy: str = "refuse"
    client_request_id: str = ""
    comparison_id: str | None = None
    batch_id: str | None = None
    idempotency_key: str | None = None  # batch items: one charge per item, whatever is redelivered
    rate_counted: bool = False  # fan-out items: counted against rate limits when their parent was admitted
    native: Native | None = None
    store: bool = False  # /v1/responses: kept for GET /v1/responses/{id} and previous_response_id
    door_params: dict[str, Any] = field(
        default_factory=dict
    )  # door fields echoed back (instructions, metadata…)
    embedding: EmbeddingParams | None = None

    @property
    def kind(self) -> str:
        """The kind of model the request needs: "chat" or "embedding"."""
        return "chat" if self.embedding is None else "embedding"

    def cache_params(self) -> dict[str, Any]:
        if self.embedding is not None:
            # The vectors depend on the inputs, model and dimensions alone (encoding is the door's business).
            return {"input": self.embedding.inputs, "dimensions": self.embedding.dimensions}
        params: dict[str, Any] = {
            "messages": self.messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "response_format": self.response_format,
            "seed": self.seed,
        }
        if self.native is not None:
            # A native body can carry what the canonical form drops (thinking, cache_control, reasoning).
            params["native"] = {k: v for k, v in self.native.body.items() if k not in ("stream", "model")}
        return params

    def uses_images(self) -> bool:
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") == "image_url" for p in content
            ):
                return True
        return False

    def uses_json(self) -> bool:
        return bool(
            self.response_format and self.response_format.get("type") in ("json_object", "json_schema")
        )


@dataclass(slots=True)
class AttemptRecord:
    model: str
    provider: str
    status: str
    latency_ms: int
    status_code: int | None = None
    error: str = ""
    retryable: bool = False

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "provider": self.provider,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "status_code": self.status_code,
        }
        if self.error:
            data["message"] = self.error
        return data


@dataclass(kw_only=True)
class Completion:
    """A finished answer in canonical form: what every door renders its body from."""

    request_id: str
    model: str  # catalog model id that answered
    provider: str
    content: str | None
    tool_calls: list[dict[str, Any]] | None  # OpenAI shape: {"id", "type": "function", "function": {...}}
    finish_reason: str  # OpenAI vocabulary
    usage: Usage
    cost: Cost
    estimated_cost: Decimal
    cached: bool
    created_at: datetime
    latency_ms: int
    selection_mode: str
    models_considered: int
    attempts: list[dict[str, Any]]
    budget_fitted: bool = False
    max_tokens_applied: int | None = None
    raw: dict[str, Any] | None = None  # the vendor's own body when the call was native
    door_params: dict[str, Any] = field(default_factory=dict)

    def router_facts(self) -> dict[str, Any]:
        """The top-level `router` object the Messages and Responses doors add to their bodies (api.md)."""
        return {
            "request_id": self.request_id,
            "model": self.model,
            "provider": self.provider,
            "cost_usd": self.cost.total,
            "cached": self.cached,
            "attempts": self.attempts,
        }


@dataclass(kw_only=True)
class Embeddings:
    """The vectors of an embeddings request, in input order: what the embeddings door renders."""

    request_id: str
    model: str  # catalog model id that answered
    provider: str
    vectors: list[bytes]  # little-endian float32 each
    usage: Usage
    usage_estimated: bool  # the vendor reported no counts: prompt_tokens is the router's estimate
    cost: Cost
    cached: bool
    created_at: datetime
    latency_ms: int
    attempts: list[dict[str, Any]]


@dataclass(kw_only=True)
class StreamMeta:
    """What a door's stream renderer knows before the first delta."""

    request_id: str
    model: str
    provider: str
    created_at: datetime
    prompt_tokens: int  # our estimate, for dialects that announce input tokens up front
    native: bool  # deltas carry the vendor's own SSE bytes in `raw`
    include_usage: bool = False
    door_params: dict[str, Any] = field(default_factory=dict)


class StreamRenderer(Protocol):
    """Turns one stream's canonical deltas into a door's SSE bytes (each renderer keeps its own state)."""

    def start(self) -> list[bytes]: ...  # the opening events, before any delta

    def delta(self, delta: StreamDelta) -> list[bytes]: ...  # native: pass delta.raw through

    def end(self, completion: Completion) -> list[bytes]: ...  # usage, terminal events

    def fail(self, error: Any) -> list[bytes]: ...  # an ApiError: the stream broke after the first byte


__all__ = [
    "DOORS",
    "AttemptRecord",
    "Caller",
    "Completion",
    "CompletionInput",
    "EmbeddingParams",
    "Embeddings",
    "Native",
    "StreamDelta",
    "StreamMeta",
    "StreamRenderer",
]
