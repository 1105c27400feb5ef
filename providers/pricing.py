"""Pure Decimal cost arithmetic: per-million-token rates to exact USD amounts, never via float."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.adapters.base import Usage

# Amounts are stored as NUMERIC(20, 10); every computed amount is rounded once to that scale.
QUANTUM = Decimal("0.0000000001")
TOKENS_PER_UNIT = Decimal(1_000_000)
_ONE = Decimal(1)

# Wide enough that tokens x rate x rate (long-context cache writes are scaled by long_input / input, kept as
# a product over a shared denominator) is exact before the one division and the one rounding step; the
# default 28 digits would round silently first.
DECIMAL_CONTEXT = Context(prec=100, rounding=ROUND_HALF_UP)


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


def require_tokens(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Tier:
    """The rates one request pays, chosen by its prompt size. Each rate is USD per 1M tokens times `scale`.

    `scale` is 1, except in a long-context tier whose cache-write rates are the base ones times
    long_input / input: that ratio need not be a finite decimal, so every rate of the tier is kept multiplied
    by the base input rate instead, and the one division happens when an amount is computed.
    """

    input: Decimal
    cached: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    output: Decimal
    scale: Decimal
    long_context: bool

    @property
    def max_input(self) -> Decimal:
        """The dearest rate a prompt token can pay in this tier (times scale)."""
        return max(self.input, self.cached, self.cache_write_5m, self.cache_write_1h)

    def amount(self, tokens_times_rates: Decimal) -> Decimal:
        """The exact USD amount of a sum of tokens x (scaled) rates: one division, correctly rounded."""
        with localcontext(DECIMAL_CONTEXT):
            return tokens_times_rates / (self.scale * TOKENS_PER_UNIT)


@dataclass(frozen=True)
class Rates:
    """USD per 1,000,000 tokens, as one price row holds them. None means "no rate of its own":

    - cached_input_per_1m None: cached prompt tokens pay the input rate;
    - cache_write_5m_per_1m None: cache writes pay the input rate; cache_write_1h_per_1m None: 1-hour writes
      pay the 5-minute write rate;
    - long_context_threshold (prompt tokens) None: one tier. Above it the long_* rates apply to the whole
      request; a None long rate keeps the base rate (cached: the base cached rate, or the long input rate
      when there is no cached rate), and cache-write rates scale by long_input / input.
    """

    input_per_1m: Decimal
    output_per_1m: Decimal
    cached_input_per_1m: Decimal | None = None
    cache_write_5m_per_1m: Decimal | None = None
    cache_write_1h_per_1m: Decimal | None = None
    long_context_threshold: int | None = None
    long_input_per_1m: Decimal | None = None
    long_output_per_1m: Decimal | None = None
    long_cached_input_per_1m: Decimal | None = None

    def __post_init__(self) -> None:
        _require_decimal("input_per_1m", self.input_per_1m)
        _require_decimal("output_per_1m", self.output_per_1m)
        for name in (
            "cached_input_per_1m",
            "cache_write_5m_per_1m",
            "cache_write_1h_per_1m",
            "long_input_per_1m",
            "long_output_per_1m",
            "long_cached_input_per_1m",
        ):
            _require_decimal(name, getattr(self, name), allow_none=True)
        if self.long_context_threshold is not None:
            require_tokens("long_context_threshold", self.long_context_threshold)
        elif (self.long_input_per_1m, self.long_output_per_1m, self.long_cached_input_per_1m) != (None,) * 3:
            raise ValueError("long-context rates need a long_context_threshold")

    @property
    def effective_cached_input_per_1m(self) -> Decimal:
        return self.input_per_1m if self.cached_input_per_1m is None else self.cached_input_per_1m

    @property
    def worst_case_input_per_1m(self) -> Decimal:
        """The dearest base-tier rate a prompt token can pay (see cost_bounds.worst_case_cost for the long tier)."""
        return self.tier(0).max_input

    def is_long_context(self, prompt_tokens: int) -> bool:
        return self.long_context_threshold is not None and prompt_tokens > self.long_context_threshold

    def tier(self, prompt_tokens: int) -> Tier:
        """The rates a request with this many prompt tokens pays for every one of its tokens."""
        base_input = self.input_per_1m
        if not self.is_long_context(prompt_tokens):
            write_5m = _or(self.cache_write_5m_per_1m, base_input)
            return Tier(
                input=base_input,
                cached=self.effective_cached_input_per_1m,
                cache_write_5m=write_5m,
                cache_write_1h=_or(self.cache_write_1h_per_1m, write_5m),
                output=self.output_per_1m,
                scale=_ONE,
                long_context=False,
            )
        with localcontext(DECIMAL_CONTEXT):
            long_input = _or(self.long_input_per_1m, base_input)
            # Write rates scale by long_input / input; with no long input rate (or a free base input, where
            # the ratio is undefined) they keep their base rates.
            scaled = self.long_input_per_1m is not None and base_input > 0
            scale = base_input if scaled else _ONE

            def write(rate: Decimal) -> Decimal:
                return rate * long_input if scaled else rate

            tier_input = long_input * scale
            if self.long_cached_input_per_1m is not None:
                cached = self.long_cached_input_per_1m * scale
            elif self.cached_input_per_1m is not None:
                cached = self.cached_input_per_1m * scale
            else:
                cached = tier_input
            write_5m = tier_input if self.cache_write_5m_per_1m is None else write(self.cache_write_5m_per_1m)
            write_1h = write_5m if self.cache_write_1h_per_1m is None else write(self.cache_write_1h_per_1m)
            return Tier(
                input=tier_input,
                cached=cached,
                cache_write_5m=write_5m,
                cache_write_1h=write_1h,
                output=_or(self.long_output_per_1m, self.output_per_1m) * scale,
                scale=scale,
                long_context=True,
            )


# Every field of a price row that Rates carries, in order: what a row copies, compares and shows.
RATE_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(Rates))


def _or(value: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if value is None else value


@dataclass(frozen=True)
class Cost:
    """A priced request. total is exactly input_cost + output_cost (each already rounded)."""

    input_cost: Decimal
    output_cost: Decimal
    total: Decimal


@dataclass(frozen=True)
class CostBreakdown:
    """Where a request's money went, each amount at ten decimal places.

    The four input-side amounts add up exactly to the Cost's input_cost: they are differences of the rounded
    running sum (plain input, then cached, then 5-minute and 1-hour writes), so each is within one quantum
    of its exact value and no rounding is counted twice.
    """

    input: Decimal  # prompt tokens neither read from nor written to the cache
    cached: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    output: Decimal  # completion tokens, reasoning and thoughts included
    long_context: bool = False  # priced at the long-context tier

    @property
    def input_cost(self) -> Decimal:
        return self.input + self.cached + self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> Decimal:
        return self.input_cost + self.output

    def cost(self) -> Cost:
        return Cost(input_cost=self.input_cost, output_cost=self.output, total=self.total)


def quantize(value: Decimal) -> Decimal:
    with localcontext(DECIMAL_CONTEXT):
        return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


_ZERO_AMOUNT = quantize(Decimal(0))  # what a part of no tokens comes to, as the general path writes it


def _breakdown(
    rates: Rates,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    cache_write_tokens: int,
    cache_write_1h_tokens: int,
) -> CostBreakdown:
    require_tokens("prompt_tokens", prompt_tokens)
    require_tokens("completion_tokens", completion_tokens)
    require_tokens("cached_tokens", cached_tokens)
    require_tokens("cache_write_tokens", cache_write_tokens)
    require_tokens("cache_write_1h_tokens", cache_write_1h_tokens)
    if cached_tokens + cache_write_tokens > prompt_tokens:
        # OpenAI semantics: cached tokens and cache writes are included in prompt_tokens. Adapters for
        # vendors that report them separately (Anthropic) add them in before pricing.
        what = "cached_tokens + cache_write_tokens" if cache_write_tokens else "cached_tokens"
        taken = cached_tokens + cache_write_tokens
        raise ValueError(f"{what} ({taken}) exceed prompt_tokens ({prompt_tokens})")
    if cache_write_1h_tokens > cache_write_tokens:
        raise ValueError(
            f"cache_write_1h_tokens ({cache_write_1h_tokens}) exceed cache_write_tokens ({cache_write_tokens})"
        )
    tier = rates.tier(prompt_tokens)
    plain = prompt_tokens - cached_tokens - cache_write_tokens
    write_5m = cache_write_tokens - cache_write_1h_tokens
    with localcontext(DECIMAL_CONTEXT):
        output = quantize(tier.amount(completion_tokens * tier.output))
        if plain == prompt_tokens:  # no cached tokens, no cache writes: the input side is one amount
            return CostBreakdown(
                input=quantize(tier.amount(plain * tier.input)),
                cached=_ZERO_AMOUNT,
                cache_write_5m=_ZERO_AMOUNT,
                cache_write_1h=_ZERO_AMOUNT,
                output=output,
                long_context=tier.long_context,
            )
        parts = [
            plain * tier.input,
            cached_tokens * tier.cached,
            write_5m * tier.cache_write_5m,
            cache_write_1h_tokens * tier.cache_write_1h,
        ]
        # The input side is rounded once, as a whole: rounding each part on its own could add up to more
        # than cost_bounds.worst_case_cost, which rounds the whole prompt at the dearest rate once.
        amounts: list[Decimal] = []
        running = Decimal(0)
        rounded_before = quantize(running)
        for part in parts:
            running += part
            rounded = quantize(tier.amount(running))
            amounts.append(rounded - rounded_before)
            rounded_before = rounded
    plain_cost, cached_cost, write_5m_cost, write_1h_cost = amounts
    return CostBreakdown(
        input=plain_cost,
        cached=cached_cost,
        cache_write_5m=write_5m_cost,
        cache_write_1h=write_1h_cost,
        output=output,
        long_context=tier.long_context,
    )


def cost_breakdown(rates: Rates, usage: Usage) -> CostBreakdown:
    """The amounts cost_of_usage adds up, one per kind of token (for showing where the money went)."""
    return _breakdown(
        rates,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
    )


def cost_of_usage(rates: Rates, usage: Usage) -> Cost:
    """What a request cost, for any vendor's usage once its adapter has put it in OpenAI's meaning.

    Plain prompt tokens (prompt - cached - cache writes) pay the input rate, cached ones the cached rate,
    5-minute cache writes (cache_write - cache_write_1h) the 5-minute write rate and 1-hour writes the 1-hour
    rate; completion tokens (reasoning and thoughts included) pay the output rate. A prompt above the
    long-context threshold puts every token of the request on the long-context tier. Input and output are
    each rounded half-up to 10 decimal places once; the total is their sum, so the three figures add up.
    Raises ValueError for counts that cannot be (cached + writes above the prompt, a 1-hour part above the
    writes): the caller bounds a provider's impossible usage before pricing it.
    """
    return cost_breakdown(rates, usage).cost()


def cost_of(rates: Rates, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Cost:
    """cost_of_usage for a usage with no cache writes: cached_tokens are the part of prompt_tokens read
    from the provider's cache."""
    return _breakdown(
        rates,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        cache_write_tokens=0,
        cache_write_1h_tokens=0,
    ).cost()


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
    with localcontext(DECIMAL_CONTEXT):
        return value.normalize()


def format_usd(value: Decimal) -> str:
    """Plain positional notation with no exponent and no trailing zeros: "0.00000825", "12.5", "0"."""
    normalized = decimal_to_json(value)
    # The "f" format never uses an exponent, also for normalized values such as Decimal("1E+2").
    return format(normalized, "f")
