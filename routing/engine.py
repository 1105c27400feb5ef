"""Pure candidate ranking and planning for the router's modes (no ORM, no I/O); its types: engine_types, its
checks: filtering."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

from providers.pricing import format_usd
from routing.engine_types import (
    AUTO_MODEL,
    DEFAULT_EXPECTED_OUTPUT_TOKENS,
    MODE_COST,
    MODE_LATENCY,
    MODE_MANUAL,
    MODES,
    Candidate,
    MaxTokensUnfit,
    ModelNotFound,
    Needs,
    NoCandidates,
    Plan,
    Ranked,
    Rejection,
    RejectReason,
    RoutingError,
    Unfit,
    WrongKind,
)
from routing.filtering import (
    availability_reason,
    estimate_cost,
    filter_candidates,
    output_cap,
    request_reason,
    size_reason,
)

# The engine's types live in engine_types; callers keep using engine.Candidate, engine.plan and so on.
__all__ = [
    "AUTO_MODEL",
    "DEFAULT_EXPECTED_OUTPUT_TOKENS",
    "MODES",
    "MODE_COST",
    "MODE_LATENCY",
    "MODE_MANUAL",
    "Candidate",
    "MaxTokensUnfit",
    "ModelNotFound",
    "Needs",
    "NoCandidates",
    "Plan",
    "Ranked",
    "RejectReason",
    "Rejection",
    "RoutingError",
    "Unfit",
    "WrongKind",
    "plan",
    "resolve_model",
]


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
            usable = [c for c in matches if availability_reason(c) is None]
            return (usable or matches)[0]
    return None


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


_MAX_TOKENS_REASONS = frozenset({RejectReason.MAX_TOKENS_TOO_LARGE, RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT})


def _context_exceeded(rejections: Iterable[Rejection]) -> bool:
    """True when every candidate that got as far as the request-specific checks failed on context."""
    request_stage = [r for r in rejections if r.reason not in _NOT_AN_OPTION]
    return bool(request_stage) and all(r.reason is RejectReason.CONTEXT_TOO_SMALL for r in request_stage)


def _unfit(
    candidates: Iterable[Candidate], rejections: Iterable[Rejection], needs: Needs, *, all_checks: bool
) -> list[Unfit]:
    """The candidates rejected for max_tokens that a smaller max_tokens would make usable.

    `allowed` is the most each takes beside the prompt (its max output, or what its window leaves). With
    all_checks, the candidate must also pass every other request check at that max_tokens (a model without
    tools is no use to a request with tools, whatever max_tokens says).
    """
    by_key = {c.key: c for c in candidates}
    found: list[Unfit] = []
    for rejection in rejections:
        candidate = by_key.get((rejection.provider, rejection.model_id))
        if rejection.reason not in _MAX_TOKENS_REASONS or candidate is None:
            continue
        allowed = min(candidate.max_output_tokens, candidate.context_window - needs.prompt_tokens)
        lowered = replace(needs, max_tokens=allowed, clamp_max_tokens=False)
        if all_checks and request_reason(candidate, lowered) is not None:
            continue
        found.append(
            Unfit(
                model_id=candidate.model_id,
                provider=candidate.provider,
                reason=rejection.reason,
                max_output_tokens=candidate.max_output_tokens,
                context_window=candidate.context_window,
                allowed=allowed,
            )
        )
    return found


def _nothing_fits(
    candidates: Sequence[Candidate], rejections: Sequence[Rejection], needs: Needs, *, all_checks: bool
) -> NoCandidates:
    """The error for an empty plan: max_tokens' when a smaller one would have made a model usable, else
    context_exceeded (the prompt alone is too long) or the general 400."""
    unfit = _unfit(candidates, rejections, needs, all_checks=all_checks)
    if unfit and needs.max_tokens is not None:
        return MaxTokensUnfit(
            rejections, max_tokens=needs.max_tokens, prompt_tokens=needs.prompt_tokens, unfit=unfit
        )
    return NoCandidates(rejections, context_exceeded=_context_exceeded(rejections))


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
    neither is cooldown: the client chose these models.

    Size is. A max_tokens above the requested model's max output is MaxTokensUnfit about that model (unless
    clamped), fallbacks or not: the client asked the model it named for more than it can write. Otherwise
    models the prompt and its output room don't fit, and fallbacks whose max output is below max_tokens,
    are skipped; when none is left it is MaxTokensUnfit if a smaller max_tokens would fit one (about the
    requested model when it is one of them), else NoCandidates(context_exceeded=True): the prompt alone is
    too long.
    """
    return _manual(model, fallbacks, list(candidates), needs)[0]


def _manual(
    model: str, fallbacks: Sequence[str], pool: list[Candidate], needs: Needs
) -> tuple[list[Candidate], list[Rejection]]:
    """plan_manual's models, and the rejections of those skipped for size."""
    resolved: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for name in (model, *fallbacks):
        candidate = _resolve_of_kind(name, pool, needs)
        if (reason := availability_reason(candidate)) is not None:
            raise ModelNotFound(name, reason.value)
        if candidate.key not in seen:
            seen.add(candidate.key)
            resolved.append(candidate)

    primary = resolved[0]
    fitting: list[Candidate] = []
    rejections: list[Rejection] = []
    for candidate in resolved:
        if (failure := size_reason(candidate, needs)) is None:
            fitting.append(candidate)
        else:
            rejections.append(Rejection(candidate.model_id, failure[0], candidate.provider, failure[1]))
    primary_reason = next((r.reason for r in rejections if (r.provider, r.model_id) == primary.key), None)
    # Above the named model's max output is an error whatever the fallbacks (the spec's 400). A prompt too
    # long for it, or a max_tokens that doesn't fit beside the prompt, leaves the fallbacks to try, as the
    # context window always did; with none left, max_tokens' error is about the named model.
    if primary_reason is RejectReason.MAX_TOKENS_TOO_LARGE or (
        not fitting and primary_reason is RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT
    ):
        assert needs.max_tokens is not None
        unfit = _unfit([primary], rejections, needs, all_checks=False)
        raise MaxTokensUnfit(
            rejections, max_tokens=needs.max_tokens, prompt_tokens=needs.prompt_tokens, unfit=unfit
        )
    if not fitting:
        raise _nothing_fits(resolved, rejections, needs, all_checks=False)
    return fitting, rejections


def _resolve_of_kind(name: str, pool: Sequence[Candidate], needs: Needs) -> Candidate:
    """The candidate a client named: ModelNotFound when none, WrongKind when it serves the other kind."""
    candidate = resolve_model(name, pool)
    if candidate is None:
        raise ModelNotFound(name)
    if candidate.kind != needs.kind:
        raise WrongKind(name, candidate.kind, needs.kind)
    return candidate


def _resolve_names(names: Sequence[str], pool: Sequence[Candidate], needs: Needs) -> list[Candidate]:
    chosen: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for name in names:
        candidate = _resolve_of_kind(name, pool, needs)
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

    Only models of the request's kind (needs.kind: chat or embedding) are options: a name that resolves to a
    model of the other kind raises WrongKind, and optimized modes never look at one.

    model "auto" means cost-optimized whatever the mode says. Manual mode needs a model (ValueError
    otherwise) and uses plan_manual. Optimized modes start from `models` when given (each must resolve,
    else ModelNotFound; unusable ones become rejections) or every candidate, filter, then rank; they
    raise NoCandidates when nothing is left (MaxTokensUnfit when a smaller max_tokens would have left a
    model). `model` is otherwise ignored in optimized modes.

    With clamp_max_tokens, Plan.max_tokens is max_tokens lowered to the first model's max output, and the
    models after it that write less than that are dropped: every attempt is sent the same max_tokens.
    """
    pool = list(candidates)
    if model == AUTO_MODEL:
        mode = MODE_COST
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}")

    if mode == MODE_MANUAL:
        if not model:
            raise ValueError("model is required in manual mode")
        chosen, skipped = _manual(model, fallbacks, pool, needs)
        primary = resolve_model(model, pool)
        manual = [
            Ranked(
                c,
                estimate_cost(c, needs),
                "manual: requested model"
                if primary is not None and c.key == primary.key
                else "manual: fallback",
            )
            for c in chosen
        ]
        return _clamped(
            Plan(mode=mode, ranked=(), rejections=tuple(skipped), considered=len(chosen)), manual, needs
        )

    # Only models of the request's kind are options: cost-optimized chat never picks an embedding model.
    considered = _resolve_names(models, pool, needs) if models else [c for c in pool if c.kind == needs.kind]
    kept, rejections = filter_candidates(considered, needs)
    if not kept:
        raise _nothing_fits(considered, rejections, needs, all_checks=True)
    ranker = rank_cost_optimized if mode == MODE_COST else rank_latency_optimized
    return _clamped(
        Plan(mode=mode, ranked=(), rejections=tuple(rejections), considered=len(considered)),
        ranker(kept, needs),
        needs,
    )


def _clamped(plan: Plan, ranked: list[Ranked], needs: Needs) -> Plan:
    """The plan with its ranked models and the max_tokens they are sent (see plan())."""
    cap = output_cap(ranked[0].candidate, needs)
    if not needs.clamp_max_tokens or cap is None:
        return replace(plan, ranked=tuple(ranked), max_tokens=needs.max_tokens)
    first = ranked[0].candidate.model_id
    keep = [r for r in ranked if r.candidate.max_output_tokens >= cap]
    dropped = [
        Rejection(
            r.candidate.model_id,
            RejectReason.MAX_TOKENS_TOO_LARGE,
            r.candidate.provider,
            f"model writes at most {r.candidate.max_output_tokens}, below the {cap} sent to {first}",
        )
        for r in ranked
        if r.candidate.max_output_tokens < cap
    ]
    return replace(plan, ranked=tuple(keep), rejections=(*plan.rejections, *dropped), max_tokens=cap)
