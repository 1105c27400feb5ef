"""What a hold is made of: the most a request can cost whatever its usage, and the most output a budget
affords (pure Decimal arithmetic over providers.pricing's rates, rounded as it rounds)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext

from providers.pricing import DECIMAL_CONTEXT, QUANTUM, TOKENS_PER_UNIT, Rates, quantize, require_tokens


def worst_case_cost(rates: Rates, prompt_tokens: int, max_output_tokens: int) -> Decimal:
    """The most a request with this prompt size can cost, whatever its usage shape.

    Every prompt token at the dearest input-side rate of the prompt's tier (input, cached, 5-minute or 1-hour
    cache write; the long-context tier's when the prompt is above the threshold), plus max_output_tokens at
    that tier's output rate. Rounded like cost_of_usage, once per side, so cost_of_usage(...).total never
    exceeds it for a usage with these prompt_tokens and at most max_output_tokens completion tokens: a
    reservation made with it always covers the charge. (The tier depends on the prompt alone, so only a
    larger prompt than estimated can cross the threshold; the token estimates err high for that reason.)
    """
    require_tokens("prompt_tokens", prompt_tokens)
    require_tokens("max_output_tokens", max_output_tokens)
    tier = rates.tier(prompt_tokens)
    with localcontext(DECIMAL_CONTEXT):
        input_cost = quantize(tier.amount(prompt_tokens * tier.max_input))
        output_cost = quantize(tier.amount(max_output_tokens * tier.output))
        return input_cost + output_cost


def max_output_tokens_affordable(
    rates: Rates, prompt_tokens: int, budget_remaining: Decimal, *, limit: int | None = None
) -> int:
    """The largest output token count whose worst_case_cost fits budget_remaining, capped at limit.

    0 when even the prompt alone (or the prompt plus one output token) does not fit. With a zero output
    rate any count fits, so limit (the request's max_tokens or the model's max output) is then required.
    """
    require_tokens("prompt_tokens", prompt_tokens)
    if not isinstance(budget_remaining, Decimal):
        raise TypeError(f"budget_remaining must be a Decimal, not {type(budget_remaining).__name__}")
    if not budget_remaining.is_finite():
        raise ValueError(f"budget_remaining must be finite, got {budget_remaining}")
    if limit is not None:
        require_tokens("limit", limit)

    prompt_only = worst_case_cost(rates, prompt_tokens, 0)
    if prompt_only > budget_remaining:
        return 0
    # The output rate worst_case_cost uses: the prompt's tier, which no output count can change.
    tier = rates.tier(prompt_tokens)
    if tier.output == 0:
        if limit is None:
            raise ValueError("output is free, so the affordable count is unbounded: pass limit")
        return limit

    with localcontext(DECIMAL_CONTEXT):
        spare = budget_remaining - prompt_only
        # Output cost is rounded half-up, so it fits while the exact amount stays below the spare money
        # (floored to the quantum) plus half a quantum. Division is inexact for arbitrary rates: take it
        # as a first guess and settle the answer with exact worst_case_cost comparisons either way.
        threshold = spare.quantize(QUANTUM, rounding=ROUND_FLOOR) + QUANTUM / 2
        guess = int(
            (threshold * TOKENS_PER_UNIT * tier.scale / tier.output).to_integral_value(rounding=ROUND_FLOOR)
        )
    if limit is not None:
        guess = min(guess, limit)
    guess = max(guess, 0)
    while guess > 0 and worst_case_cost(rates, prompt_tokens, guess) > budget_remaining:
        guess -= 1
    while (limit is None or guess < limit) and worst_case_cost(
        rates, prompt_tokens, guess + 1
    ) <= budget_remaining:
        guess += 1
    return guess
