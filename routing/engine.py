"""Pure candidate filtering and ranking for the router's modes (no ORM, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from providers.pricing import Rates, cost_of, format_usd

MODE_MANUAL = "manual"
MODE_COST = "cost-optimized"
MODE_LATENCY = "latency-optimized"
MODES = (MODE_MANUAL, MODE_COST, MODE_LATENCY)
AUTO_MODEL = "auto"
DEFAULT_EXPECTED_OUTPUT_TOKENS = 500


class RejectReason(StrEnum):
    """Why a candidate was dropped. The first failing check is the one recorded."""

    INACTIVE = "inactive"
    PROVIDER_INACTIVE = "provider_inactive"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    NO_PRICE = "no_price"
    DEPRECATED = "deprecated"
    PROVIDER_FILTERED = "provider_filtered"
    CONTEXT_TOO_SMALL = "context_too_small"
    MAX_TOKENS_TOO_LARGE = "max_tokens_too_large"
    NO_TOOLS = "no_tools"
    NO_VISION = "no_vision"
    NO_JSON = "no_json"
    OVER_MAX_COST = "over_max_cost"
    IN_COOLDOWN = "in_cooldown"


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One routable model as the catalog and health tracking see it right now."""

    model_id: str
    provider: str
    context_window: int
    max_output_tokens: int
    # None when the catalog has no price in force: such a model is never routed to, since it can't be charged.
    rates: Rates | None
    aliases: tuple[str, ...] = ()
    supports_tools: bool = False
    supports_vision: bool = False
    supports_json: bool = False
    active: bool = True
    provider_active: bool = True
    provider_configured: bool = True
    deprecation_date: date | None = None
    p50_latency_ms: float | None = None
    in_cooldown: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.model_id)


@dataclass(frozen=True, kw_only=True)
class Needs:
    """What a request requires of a model, with the token estimates used for fit and cost."""

    prompt_tokens: int
    today: date
    expected_output_tokens: int = DEFAULT_EXPECTED_OUTPUT_TOKENS
    max_tokens: int | None = None
    uses_tools: bool = False
    uses_images: bool = False
    uses_json: bool = False
    provider_filter: tuple[str, ...] | None = None
    max_cost: Decimal | None = None

    @property
    def reserved_output_tokens(self) -> int:
        """Output room the context window must hold: max_tokens when given, else the expected output."""
        return self.max_tokens if self.max_tokens is not None else self.expected_output_tokens


@dataclass(frozen=True)
class Rejection:
    model_id: str
    reason: RejectReason
    provider: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    estimated_cost: Decimal
    reason: str


@dataclass(frozen=True)
class Plan:
    """The ordered models to try, what was dropped and why, and how many models were looked at."""

    mode: str
    ranked: tuple[Ranked, ...]
    rejections: tuple[Rejection, ...] = ()
    considered: int = 0

    @property
    def candidates(self) -> list[Candidate]:
        return [r.candidate for r in self.ranked]


class RoutingError(Exception):
    pass


class ModelNotFound(RoutingError):
    """A requested name matches no model, or one that can't be used (inactive, unconfigured, unpriced)."""

    def __init__(self, name: str, reason: str = "unknown") -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"Model '{name}' not found or inactive")


class NoCandidates(RoutingError):
    """Nothing fits the request. context_exceeded means the prompt (plus the output room asked for) is
    longer than the context window of every model the request could otherwise use: the API's 413
    context_length_exceeded, as opposed to a 400 for capabilities, filters or max_cost."""

    def __init__(self, rejections: Sequence[Rejection], *, context_exceeded: bool) -> None:
        self.rejections = tuple(rejections)
        self.context_exceeded = context_exceeded
        if context_exceeded:
            message = "The prompt is longer than the context window of every candidate model"
        else:
            reasons = sorted({r.reason.value for r in self.rejections})
            message = "No model fits the request" + (f" ({', '.join(reasons)})" if reasons else "")
        super().__init__(message)


def resolve_model(name: str, candidates: Iterable[Candidate]) -> Candidate | None:
    """The candidate named by exact model_id, else by alias (both case-sensitive), else None.

    When several match at the same level (one model served by two providers), a usable one is preferred,
    then the first in the given order.
    """
    pool = list(candidates)
    for matches in (
        [c for c in pool if c.model_id == name],
        [c for c in pool if name in c.aliases],
    ):
        if matches:
            usable = [c for c in matches if _availability_reason(c) is None]
            return (usable or matches)[0]
    return None


def _availability_reason(candidate: Candidate) -> RejectReason | None:
    if not candidate.active:
        return RejectReason.INACTIVE
    if not candidate.provider_active:
        return RejectReason.PROVIDER_INACTIVE
    if not candidate.provider_configured:
        return RejectReason.PROVIDER_NOT_CONFIGURED
    if candidate.rates is None:
        return RejectReason.NO_PRICE
    return None


def estimated_output_tokens(candidate: Candidate, needs: Needs) -> int:
    """Output tokens assumed for cost estimates: expected_output_tokens, but never more than the request's
    max_tokens or the model's max output allow."""
    tokens = needs.expected_output_tokens
    if needs.max_tokens is not None:
        tokens = min(tokens, needs.max_tokens)
    return max(0, min(tokens, candidate.max_output_tokens))


def estimate_cost(candidate: Candidate, needs: Needs) -> Decimal:
    """Prompt at the input rate plus the estimated output at the output rate (no cache discount assumed)."""
    if candidate.rates is None:
        raise ValueError(f"{candidate.model_id} has no price")
    return cost_of(candidate.rates, needs.prompt_tokens, estimated_output_tokens(candidate, needs)).total


def _fits_context(candidate: Candidate, needs: Needs) -> bool:
    return needs.prompt_tokens + needs.reserved_output_tokens <= candidate.context_window


def _request_reason(candidate: Candidate, needs: Needs) -> tuple[RejectReason, str] | None:
    """The first request-specific check a usable candidate fails, or None."""
    if not _fits_context(candidate, needs):
        need = needs.prompt_tokens + needs.reserved_output_tokens
        return RejectReason.CONTEXT_TOO_SMALL, f"needs {need} tokens, window is {candidate.context_window}"
    if needs.max_tokens is not None and needs.max_tokens > candidate.max_output_tokens:
        # The vendor would answer 400 for it; better to pick a model that can write that much.
        return RejectReason.MAX_TOKENS_TOO_LARGE, f"model writes at most {candidate.max_output_tokens}"
    if needs.uses_tools and not candidate.supports_tools:
        return RejectReason.NO_TOOLS, ""
    if needs.uses_images and not candidate.supports_vision:
        return RejectReason.NO_VISION, ""
    if needs.uses_json and not candidate.supports_json:
        return RejectReason.NO_JSON, ""
    if needs.max_cost is not None:
        cost = estimate_cost(candidate, needs)
        if cost > needs.max_cost:
            return RejectReason.OVER_MAX_COST, f"estimated {format_usd(cost)} > {format_usd(needs.max_cost)}"
    return None


def filter_candidates(
    candidates: Iterable[Candidate], needs: Needs
) -> tuple[list[Candidate], list[Rejection]]:
    """Split candidates into those an optimized mode may use and rejections with their reasons.

    Checks, first failure recorded: model active, provider active and configured, priced; not past its
    deprecation date (deprecation_date < today); provider_filter; prompt + (max_tokens or expected
    output) within the context window; max_tokens within the model's max output; tools, vision and JSON
    support when used; estimated cost within max_cost. Candidates in cooldown are dropped last, and only
    when at least one candidate outside cooldown remains: a cooldown steers traffic away from a failing
    model but must never turn a servable request into a failure.
    """
    kept: list[Candidate] = []
    rejections: list[Rejection] = []
    provider_filter = set(needs.provider_filter) if needs.provider_filter is not None else None
    for candidate in candidates:
        reason: RejectReason | None = _availability_reason(candidate)
        detail = ""
        if (
            reason is None
            and candidate.deprecation_date is not None
            and candidate.deprecation_date < needs.today
        ):
            reason, detail = RejectReason.DEPRECATED, f"retired on {candidate.deprecation_date.isoformat()}"
        if reason is None and provider_filter is not None and candidate.provider not in provider_filter:
            reason = RejectReason.PROVIDER_FILTERED
        if reason is None and (failure := _request_reason(candidate, needs)) is not None:
            reason, detail = failure
        if reason is None:
            kept.append(candidate)
        else:
            rejections.append(Rejection(candidate.model_id, reason, candidate.provider, detail))

    if any(c.in_cooldown for c in kept) and not all(c.in_cooldown for c in kept):
        rejections.extend(
            Rejection(c.model_id, RejectReason.IN_COOLDOWN, c.provider) for c in kept if c.in_cooldown
        )
        kept = [c for c in kept if not c.in_cooldown]
    return kept, rejections


# Rejections that say nothing about the request: the model was never an option for anyone.
_NOT_AN_OPTION = frozenset(
    {
        RejectReason.INACTIVE,
        RejectReason.PROVIDER_INACTIVE,
        RejectReason.PROVIDER_NOT_CONFIGURED,
        RejectReason.NO_PRICE,
        RejectReason.DEPRECATED,
        RejectReason.PROVIDER_FILTERED,
    }
)


def _context_exceeded(rejections: Iterable[Rejection]) -> bool:
    """True when every candidate that got as far as the request-specific checks failed on context."""
    request_stage = [r for r in rejections if r.reason not in _NOT_AN_OPTION]
    return bool(request_stage) and all(r.reason is RejectReason.CONTEXT_TOO_SMALL for r in request_stage)


def _latency_key(candidate: Candidate) -> float:
    # No observations yet counts as slowest, so a proven model wins a tie over an unknown one.
    return math.inf if candidate.p50_latency_ms is None else candidate.p50_latency_ms


def _latency_text(candidate: Candidate) -> str:
    return "no latency data" if candidate.p50_latency_ms is None else f"p50 {candidate.p50_latency_ms:g} ms"


def rank_cost_optimized(kept: Iterable[Candidate], needs: Needs) -> list[Ranked]:
    """Cheapest estimated cost first; ties by p50 latency (none = slowest), then model_id, then provider."""
    priced = [(estimate_cost(c, needs), c) for c in kept]
    priced.sort(key=lambda pc: (pc[0], _latency_key(pc[1]), pc[1].model_id, pc[1].provider))
    return [
        Ranked(c, cost, f"cost-optimized #{i}: estimated ${format_usd(cost)}, {_latency_text(c)}")
        for i, (cost, c) in enumerate(priced, start=1)
    ]


def rank_latency_optimized(kept: Iterable[Candidate], needs: Needs) -> list[Ranked]:
    """Lowest observed p50 latency first (none = last); ties by estimated cost, then model_id, provider."""
    priced = [(estimate_cost(c, needs), c) for c in kept]
    priced.sort(key=lambda pc: (_latency_key(pc[1]), pc[0], pc[1].model_id, pc[1].provider))
    return [
        Ranked(c, cost, f"latency-optimized #{i}: {_latency_text(c)}, estimated ${format_usd(cost)}")
        for i, (cost, c) in enumerate(priced, start=1)
    ]


def plan_manual(
    model: str, fallbacks: Sequence[str], candidates: Iterable[Candidate], needs: Needs
) -> list[Candidate]:
    """The requested model then its fallbacks, in order, each resolved by id or alias, duplicates removed.

    An unknown name, or one whose model is inactive, on an inactive or unconfigured provider, or unpriced,
    raises ModelNotFound. Deprecation is not applied (the caller warns with a Deprecation header) and
    neither is cooldown: the client chose these models. The context window is: models the prompt cannot
    fit are skipped, and NoCandidates(context_exceeded=True) is raised when it fits none of them.
    """
    pool = list(candidates)
    resolved: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for name in (model, *fallbacks):
        candidate = resolve_model(name, pool)
        if candidate is None:
            raise ModelNotFound(name)
        if (reason := _availability_reason(candidate)) is not None:
            raise ModelNotFound(name, reason.value)
        if candidate.key not in seen:
            seen.add(candidate.key)
            resolved.append(candidate)

    fitting = [c for c in resolved if _fits_context(c, needs)]
    if not fitting:
        need = needs.prompt_tokens + needs.reserved_output_tokens
        raise NoCandidates(
            [
                Rejection(
                    c.model_id,
                    RejectReason.CONTEXT_TOO_SMALL,
                    c.provider,
                    f"needs {need} tokens, window is {c.context_window}",
                )
                for c in resolved
            ],
            context_exceeded=True,
        )
    return fitting


def _resolve_names(names: Sequence[str], pool: Sequence[Candidate]) -> list[Candidate]:
    chosen: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for name in names:
        candidate = resolve_model(name, pool)
        if candidate is None:
            raise ModelNotFound(name)
        if candidate.key not in seen:
            seen.add(candidate.key)
            chosen.append(candidate)
    return chosen


def plan(
    *,
    mode: str,
    model: str | None,
    candidates: Iterable[Candidate],
    needs: Needs,
    models: Sequence[str] | None = None,
    fallbacks: Sequence[str] = (),
) -> Plan:
    """Order the models to try for a request in any mode.

    model "auto" means cost-optimized whatever the mode says. Manual mode needs a model (ValueError
    otherwise) and uses plan_manual. Optimized modes start from `models` when given (each must resolve,
    else ModelNotFound; unusable ones become rejections) or every candidate, filter, then rank; they
    raise NoCandidates when nothing is left. `model` is otherwise ignored in optimized modes.
    """
    pool = list(candidates)
    if model == AUTO_MODEL:
        mode = MODE_COST
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}")

    if mode == MODE_MANUAL:
        if not model:
            raise ValueError("model is required in manual mode")
        chosen = plan_manual(model, fallbacks, pool, needs)
        primary = resolve_model(model, pool)
        ranked = tuple(
            Ranked(
                c,
                estimate_cost(c, needs),
                "manual: requested model"
                if primary is not None and c.key == primary.key
                else "manual: fallback",
            )
            for c in chosen
        )
        return Plan(mode=mode, ranked=ranked, considered=len(chosen))

    considered = _resolve_names(models, pool) if models else pool
    kept, rejections = filter_candidates(considered, needs)
    if not kept:
        raise NoCandidates(rejections, context_exceeded=_context_exceeded(rejections))
    ranker = rank_cost_optimized if mode == MODE_COST else rank_latency_optimized
    return Plan(
        mode=mode,
        ranked=tuple(ranker(kept, needs)),
        rejections=tuple(rejections),
        considered=len(considered),
    )
