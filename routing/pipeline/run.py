"""The state of one request from plan to log row, and the small value types the stages pass around."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from config.api_errors import ApiError
from providers.adapters.base import ChatRequest, ChatResult, EmbeddingRequest, EmbeddingResult, Usage
from providers.catalog import Catalog, CatalogModel
from providers.pricing import Cost
from routing import engine
from routing.pipeline.types import AttemptRecord, Caller, CompletionInput

ZERO = Decimal(0)


class PromptTokens(Protocol):
    """Per model id, the prompt estimate (plan.PromptCounts counts it when first asked for)."""

    def __getitem__(self, model_id: str) -> int: ...

    def get(self, model_id: str, default: int = 0) -> int: ...


@dataclass(slots=True)
class Charge:
    """What the answer cost, priced at the price row in force when it was planned."""

    usage: Usage
    cost: Cost
    price_id: int | None
    anomalies: list[str] = field(default_factory=list)  # provider counts that were out of bounds


def embedding_facts(result: EmbeddingResult) -> dict[str, object]:
    """What the log keeps of an embeddings answer: how many vectors of which size, never the vectors."""
    sizes = sorted(set(result.sizes))
    return {
        "vectors": len(result.vectors),
        "dimensions": sizes[0] if len(sizes) == 1 else sizes,
        "usage_estimated": result.usage_estimated,
    }


@dataclass
class Outcome:
    """Everything the log row needs, whatever happened."""

    status: str
    http_status: int
    model: CatalogModel | None
    charge: Charge | None = None
    content: str = ""
    finish_reason: str = ""
    tool_calls: list[dict[str, object]] | None = None
    error: ApiError | None = None
    cached: bool = False
    cache_savings: Decimal = ZERO
    # Embeddings: the vectors' count and size (embedding_facts), for the row's params.
    embedding: dict[str, object] | None = None

    @classmethod
    def answered(
        cls,
        model: CatalogModel,
        result: ChatResult | EmbeddingResult,
        charge: Charge,
        *,
        cache_savings: Decimal | None = None,
    ) -> Outcome:
        """A provider's (or the cache's, when cache_savings is given) answer, for the log row."""
        if isinstance(result, EmbeddingResult):
            return cls(
                status="success",
                http_status=200,
                model=model,
                charge=charge,
                embedding=embedding_facts(result),
                cached=cache_savings is not None,
                cache_savings=cache_savings if cache_savings is not None else ZERO,
            )
        return cls(
            status="success",
            http_status=200,
            model=model,
            charge=charge,
            content=result.content or "",
            finish_reason=result.finish_reason,
            tool_calls=result.tool_calls,
            cached=cache_savings is not None,
            cache_savings=cache_savings if cache_savings is not None else ZERO,
        )


@dataclass
class CompletionRun:
    """The state of one request from plan to log row."""

    caller: Caller
    inp: CompletionInput
    request_id: str
    catalog: Catalog
    plan: engine.Plan
    prompt_tokens: PromptTokens  # per model id: the estimate that fit and ranking are judged on
    prompt_bound: int = 0  # a true upper bound of the prompt, whatever the tokenizer: what holds are sized by
    started: float = field(default_factory=time.monotonic)
    created_at: datetime = field(default_factory=timezone.now)
    attempts: list[AttemptRecord] = field(default_factory=list)
    reservations: dict[str, int] = field(default_factory=dict)  # model id → reservation id
    budget_fitted: bool = False
    max_tokens_override: int | None = None
    cache_status: str = "bypass"
    cache_key: str | None = None
    deadline: float = 0.0
    finished_ms: int | None = None  # frozen when the row is written, so the body and the row agree
    pending_written: bool = False  # the write-ahead row is in (it goes with the first hold)
    # The rate-limit windows it was counted in (under its request id), to settle; the estimate, when known.
    rate_keys: tuple[str, ...] = ()
    rate_tokens: int | None = None
    rate_headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-* for every response
    logged_prompt: str | None = None  # embeddings: the inputs as prompt text, made once for both writes

    def __post_init__(self) -> None:
        self.deadline = self.started + settings.ROUTER_DEADLINE_S

    def elapsed_ms(self) -> int:
        if self.finished_ms is not None:
            return self.finished_ms
        return int((time.monotonic() - self.started) * 1000)

    def overhead_ms(self) -> float:
        """Time spent in the router rather than waiting for a provider."""
        upstream = sum(a.latency_ms for a in self.attempts)
        return max((time.monotonic() - self.started) * 1000 - upstream, 0.0)

    def prompt_cap(self, model: CatalogModel) -> int:
        """The most prompt tokens the model can take: its context window, once per input for embeddings."""
        embedding = self.inp.embedding
        return model.context_window * (len(embedding.inputs) if embedding is not None else 1)

    def held_prompt(self, model: CatalogModel) -> int:
        """The prompt tokens a hold covers: the bound, but never beyond what the model can take."""
        return min(max(self.prompt_bound, self.prompt_tokens.get(model.model_id, 0)), self.prompt_cap(model))

    def model(self, model_id: str) -> CatalogModel:
        found = self.catalog.by_name(model_id)
        assert found is not None
        return found

    def is_native(self, model: CatalogModel) -> bool:
        native = self.inp.native
        return native is not None and native.provider == model.provider

    def estimated_cost(self, model_id: str) -> Decimal:
        for ranked in self.plan.ranked:
            if ranked.candidate.model_id == model_id:
                return ranked.estimated_cost
        return ZERO

    def embedding_request(self, model: CatalogModel) -> EmbeddingRequest:
        embedding = self.inp.embedding
        assert embedding is not None
        return EmbeddingRequest(
            model=model.model_id,
            inputs=embedding.inputs,
            dimensions=embedding.dimensions,
            user=embedding.user,
        )

    def chat_request(self, model: CatalogModel, *, stream: bool) -> ChatRequest:
        inp = self.inp
        native = inp.native if self.is_native(model) else None
        return ChatRequest(
            model=model.model_id,
            messages=inp.messages,
            max_tokens=self.max_tokens_override or inp.max_tokens,
            temperature=inp.temperature,
            top_p=inp.top_p,
            stop=inp.stop,
            seed=inp.seed,
            user=inp.user,
            tools=inp.tools,
            tool_choice=inp.tool_choice,
            response_format=inp.response_format,
            stream=stream,
            native=native.body if native is not None else None,
            native_headers=dict(native.headers) if native is not None else {},
        )
