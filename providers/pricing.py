"""Pure Decimal cost arithmetic: per-million-token rates to exact USD amounts, never via float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, localcontext

# Amounts are stored as NUMERIC(20, 10); every computed amount is rounded once to that scale.
QUANTUM = Decimal("0.0000000001")
TOKENS_PER_UNIT = Decimal(1_000_000)

# Wide enough that tokens x rate (up to ~10^12 with 10 decimals) is exact before the one rounding step;
# the default 28 digits would round silently first.
_CONTEXT = Context(prec=60, rounding=ROUND_HALF_UP)


def _require_decimal(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    # bool is excluded by Decimal's own type; float is the mistake this guards against.
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _require_tokens(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


@dataclass(frozen=True)
class Rates:
    """USD per 1,000,000 tokens. cached_input_per_1m None means cached prompt tokens pay the input rate."""

    input_per_1m: Decimal
    output_per_1m: Decimal
    cached_input_per_1m: Decimal | None = None

    def __post_init__(self) -> None:
        _require_decimal("input_per_1m", self.input_per_1m)
        _require_decimal("output_per_1m", self.output_per_1m)
        _require_decimal("cached_input_per_1m", self.cached_input_per_1m, allow_none=True)

    @property
    def effective_cached_input_per_1m(self) -> Decimal:
        return self.input_per_1m if self.cached_input_per_1m is None else self.cached_input_per_1m

    @property
    def worst_case_input_per_1m(self) -> Decimal:
        # A cached rate above the input rate never occurs in real price lists, but taking the max keeps
        # "actual cost <= worst case" true whatever the catalog holds.
        return max(self.input_per_1m, self.effective_cached_input_per_1m)


@dataclass(frozen=True)
class Cost:
    """A priced request. total is exactly input_cost + output_cost (each already rounded)."""

    input_cost: Decimal
    output_cost: Decimal
    total: Decimal


def _quantize(value: Decimal) -> Decimal:
    with localcontext(_CONTEXT):
        return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def _price(tokens: int, rate_per_1m: Decimal) -> Decimal:
    with localcontext(_CONTEXT):
        return Decimal(tokens) * rate_per_1m / TOKENS_PER_UNIT


def cost_of(rates: Rates, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Cost:
    """Cost of a request. cached_tokens are the part of prompt_tokens served from the provider's cache.

    Uncached prompt tokens pay the input rate, cached ones the cached rate (the input rate when there is
    none), completion tokens the output rate. Input and output are each rounded half-up to 10 decimal
    places; the total is their sum, so the three figures always add up.
    """
    _require_tokens("prompt_tokens", prompt_tokens)
    _require_tokens("completion_tokens", completion_tokens)
    _require_tokens("cached_tokens", cached_tokens)
    if cached_tokens > prompt_tokens:
        # OpenAI semantics: cached tokens are included in prompt_tokens. Adapters for vendors that report
        # them separately (Anthropic) must add them in before pricing.
        raise ValueError(f"cached_tokens ({cached_tokens}) exceed prompt_tokens ({prompt_tokens})")
    with localcontext(_CONTEXT):
        exact_input = _price(prompt_tokens - cached_tokens, rates.input_per_1m) + _price(
            cached_tokens, rates.effective_cached_input_per_1m
        )
        input_cost = _quantize(exact_input)
        output_cost = _quantize(_price(completion_tokens, rates.output_per_1m))
        return Cost(input_cost=input_cost, output_cost=output_cost, total=input_cost + output_cost)


def worst_case_cost(rates: Rates, prompt_tokens: int, max_output_tokens: int) -> Decimal:
    """The most a request can cost: every prompt token at the full input rate plus max_output_tokens.

    Rounded exactly like cost_of (per component), so cost_of(...).total never exceeds it for the same
    prompt and any completion up to max_output_tokens: a reservation made with it always covers the charge.
    """
    _require_tokens("prompt_tokens", prompt_tokens)
    _require_tokens("max_output_tokens", max_output_tokens)
    with localcontext(_CONTEXT):
        input_cost = _quantize(_price(prompt_tokens, rates.worst_case_input_per_1m))
        output_cost = _quantize(_price(max_output_tokens, rates.output_per_1m))
        return input_cost + output_cost


def max_output_tokens_affordable(
    rates: Rates, prompt_tokens: int, budget_remaining: Decimal, *, limit: int | None = None
) -> int:
    """The largest output token count whose worst_case_cost fits budget_remaining, capped at limit.

    0 when even the prompt alone (or the prompt plus one output token) does not fit. With a zero output
    rate any count fits, so limit (the request's max_tokens or the model's max output) is then required.
    """
    _require_tokens("prompt_tokens", prompt_tokens)
    if not isinstance(budget_remaining, Decimal):
        raise TypeError(f"budget_remaining must be a Decimal, not {type(budget_remaining).__name__}")
    if not budget_remaining.is_finite():
        raise ValueError(f"budget_remaining must be finite, got {budget_remaining}")
    if limit is not None:
        _require_tokens("limit", limit)

    if worst_case_cost(rates, prompt_tokens, 0) > budget_remaining:
        return 0
    if rates.output_per_1m == 0:
        if limit is None:
            raise ValueError("output is free, so the affordable count is unbounded: pass limit")
        return limit

    with localcontext(_CONTEXT):
        spare = budget_remaining - worst_case_cost(rates, prompt_tokens, 0)
        # Output cost is rounded half-up, so it fits while the exact amount stays below the spare money
        # (floored to the quantum) plus half a quantum. Division is inexact for arbitrary rates: take it
        # as a first guess and settle the answer with exact worst_case_cost comparisons either way.
        threshold = spare.quantize(QUANTUM, rounding=ROUND_FLOOR) + QUANTUM / 2
        guess = int(
            (threshold * TOKENS_PER_UNIT / rates.output_per_1m).to_integral_value(rounding=ROUND_FLOOR)
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


def decimal_to_json(value: Decimal) -> Decimal:
    """A Decimal ready for JSON: trailing zeros dropped, zero (and -0) as plain 0.

    Python's renderers do not print it positionally on their own (str(Decimal("8.25E-8")) keeps the
    exponent; json/DRF turn it into a float or a string), so a renderer should write it with format_usd,
    e.g. with orjson: `orjson.dumps(data, default=lambda o: orjson.Fragment(format_usd(o)))` for
    Decimal values, which emits the JSON number 0.00000825.
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"value must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"JSON has no representation for {value}")
    if value.is_zero():
        return Decimal(0)
    with localcontext(_CONTEXT):
        return value.normalize()


def format_usd(value: Decimal) -> str:
    """Plain positional notation with no exponent and no trailing zeros: "0.00000825", "12.5", "0"."""
    normalized = decimal_to_json(value)
    # The "f" format never uses an exponent, also for normalized values such as Decimal("1E+2").
    return format(normalized, "f")
