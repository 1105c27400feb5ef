"""Which candidates may serve a request and what one would cost: the pure checks the engine plans from."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from providers.pricing import cost_of, format_usd
from routing.engine_types import Candidate, Needs, Rejection, RejectReason


def availability_reason(candidate: Candidate) -> RejectReason | None:
    """Why the candidate is no option for any request (inactive, provider off or unconfigured, unpriced)."""
    if not candidate.active:
        return RejectReason.INACTIVE
    if not candidate.provider_active:
        return RejectReason.PROVIDER_INACTIVE
    if not candidate.provider_configured:
        return RejectReason.PROVIDER_NOT_CONFIGURED
    if candidate.rates is None:
        return RejectReason.NO_PRICE
    return None


def output_cap(candidate: Candidate, needs: Needs) -> int | None:
    """The max_tokens this candidate would be sent: the request's, or with clamping at most its max output."""
    if needs.max_tokens is None:
        return None
    if needs.clamp_max_tokens:
        return min(needs.max_tokens, candidate.max_output_tokens)
    return needs.max_tokens


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


def size_reason(candidate: Candidate, needs: Needs) -> tuple[RejectReason, str] | None:
    """Whether the prompt and the output room fit the model: the context window must hold the prompt plus
    max_tokens (without max_tokens, the expected output), and max_tokens must be within the max output.

    With max_tokens given, a prompt that leaves no room for a single output token is the prompt's fault
    (CONTEXT_TOO_SMALL); one that fits but not with max_tokens beside it is max_tokens' fault.
    """
    prompt = needs.prompt_tokens if needs.fit_tokens is None else needs.fit_tokens
    window = candidate.context_window
    cap = output_cap(candidate, needs)
    if cap is None:
        need = prompt + needs.expected_output_tokens
        if need > window:
            return RejectReason.CONTEXT_TOO_SMALL, f"needs {need} tokens, window is {window}"
        return None
    if prompt >= window:
        return RejectReason.CONTEXT_TOO_SMALL, f"prompt of {prompt} tokens, window is {window}"
    if cap > candidate.max_output_tokens:
        # The vendor would answer 400 for it; better to pick a model that can write that much.
        return RejectReason.MAX_TOKENS_TOO_LARGE, f"model writes at most {candidate.max_output_tokens}"
    if prompt + cap > window:
        return RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT, f"needs {prompt + cap} tokens, window is {window}"
    return None


def request_reason(candidate: Candidate, needs: Needs) -> tuple[RejectReason, str] | None:
    """The first request-specific check a usable candidate fails, or None."""
    if (failure := size_reason(candidate, needs)) is not None:
        return failure
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
    deprecation date (deprecation_date < today); provider_filter; the prompt within the context window;
    max_tokens within the model's max output (with clamp_max_tokens, lowered to it instead); prompt +
    (max_tokens or expected output) within the context window; tools, vision and JSON support when used;
    estimated cost within max_cost. Candidates in cooldown are dropped last, and only when at least one
    candidate outside cooldown remains: a cooldown steers traffic away from a failing model but must never
    turn a servable request into a failure.
    """
    kept: list[Candidate] = []
    rejections: list[Rejection] = []
    provider_filter = set(needs.provider_filter) if needs.provider_filter is not None else None
    for candidate in candidates:
        reason: RejectReason | None = availability_reason(candidate)
        detail = ""
        if (
            reason is None
            and candidate.deprecation_date is not None
            and candidate.deprecation_date < needs.today
        ):
            reason, detail = RejectReason.DEPRECATED, f"retired on {candidate.deprecation_date.isoformat()}"
        if reason is None and provider_filter is not None and candidate.provider not in provider_filter:
            reason = RejectReason.PROVIDER_FILTERED
        if reason is None and (failure := request_reason(candidate, needs)) is not None:
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
