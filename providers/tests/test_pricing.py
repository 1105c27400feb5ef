"""Cost arithmetic: exact Decimal amounts for every usage shape (cached input, 5-minute and 1-hour cache writes,
long-context tiers), rounding and budget-fitting edge cases."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import orjson
import pytest

from providers.adapters.base import Usage
from providers.cost_bounds import max_output_tokens_affordable, worst_case_cost
from providers.pricing import (
    Cost,
    CostBreakdown,
    Rates,
    cost_breakdown,
    cost_of,
    cost_of_usage,
    decimal_to_json,
    format_usd,
)

D = Decimal
GPT_4O_MINI = Rates(input_per_1m=D("0.15"), output_per_1m=D("0.60"), cached_input_per_1m=D("0.075"))
CLAUDE_SONNET = Rates(input_per_1m=D("3.00"), output_per_1m=D("15.00"), cached_input_per_1m=D("0.30"))
NO_CACHE_RATE = Rates(input_per_1m=D("0.50"), output_per_1m=D("1.50"))
# Sonnet 4.5 with the 1M context window: writes 1.25x / 2x input; above 200k prompt tokens input and cache reads
# double and output is 1.5x (writes scale with input: 7.50 / 12.00).
SONNET_1M = Rates(
    input_per_1m=D("3.00"),
    output_per_1m=D("15.00"),
    cached_input_per_1m=D("0.30"),
    cache_write_5m_per_1m=D("3.75"),
    cache_write_1h_per_1m=D("6.00"),
    long_context_threshold=200_000,
    long_input_per_1m=D("6.00"),
    long_output_per_1m=D("22.50"),
    long_cached_input_per_1m=D("0.60"),
)
GEMINI_PRO = Rates(
    input_per_1m=D("1.25"),
    output_per_1m=D("10.00"),
    cached_input_per_1m=D("0.125"),
    long_context_threshold=200_000,
    long_input_per_1m=D("2.50"),
    long_output_per_1m=D("15.00"),
    long_cached_input_per_1m=D("0.25"),
)


def usage(prompt: int, completion: int = 0, **counts: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, **counts)


class TestRates:
    def test_it_refuses_floats(self) -> None:
        with pytest.raises(TypeError, match="input_per_1m must be a Decimal"):
            Rates(input_per_1m=0.15, output_per_1m=D("0.60"))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="cached_input_per_1m"):
            Rates(input_per_1m=D("0.15"), output_per_1m=D("0.60"), cached_input_per_1m=0.075)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [D("-0.01"), D("NaN"), D("Infinity")])
    def test_it_refuses_negative_and_non_finite_rates(self, bad: Decimal) -> None:
        with pytest.raises(ValueError):
            Rates(input_per_1m=bad, output_per_1m=D("1"))

    def test_it_is_immutable(self) -> None:
        with pytest.raises(AttributeError):
            GPT_4O_MINI.input_per_1m = D("1")  # type: ignore[misc]

    @pytest.mark.parametrize(
        "name",
        [
            "cache_write_5m_per_1m",
            "cache_write_1h_per_1m",
            "long_input_per_1m",
            "long_output_per_1m",
            "long_cached_input_per_1m",
        ],
    )
    def test_it_checks_the_cache_write_and_long_context_rates_like_the_others(self, name: str) -> None:
        threshold = {"long_context_threshold": 10}
        with pytest.raises(TypeError, match=f"{name} must be a Decimal"):
            Rates(input_per_1m=D("1"), output_per_1m=D("1"), **threshold, **{name: 1.25})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=f"{name} must not be negative"):
            Rates(input_per_1m=D("1"), output_per_1m=D("1"), **threshold, **{name: D("-1")})  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [-1, 1.5, True, "200000"])
    def test_the_threshold_is_a_non_negative_token_count(self, bad: object) -> None:
        with pytest.raises((TypeError, ValueError), match="long_context_threshold"):
            Rates(input_per_1m=D("1"), output_per_1m=D("1"), long_context_threshold=bad)  # type: ignore[arg-type]

    def test_long_context_rates_without_a_threshold_are_refused(self) -> None:
        with pytest.raises(ValueError, match="need a long_context_threshold"):
            Rates(input_per_1m=D("1"), output_per_1m=D("1"), long_output_per_1m=D("2"))


class TestCostOfUsage:
    def test_plain_input_pays_the_input_rate_and_output_the_output_rate(self) -> None:
        assert cost_of_usage(SONNET_1M, usage(1000, 200)) == Cost(D("0.003"), D("0.003"), D("0.006"))

    def test_cached_input_pays_the_cached_rate(self) -> None:
        # 400 x 3.00 + 600 x 0.30 per 1M.
        assert cost_of_usage(SONNET_1M, usage(1000, cached_tokens=600)).input_cost == D("0.00138")

    def test_5_minute_writes_pay_the_5_minute_rate(self) -> None:
        # 600 x 3.00 + 400 x 3.75 per 1M.
        assert cost_of_usage(SONNET_1M, usage(1000, cache_write_tokens=400)).input_cost == D("0.0033")

    def test_1_hour_writes_pay_the_1_hour_rate(self) -> None:
        # 600 x 3.00 + 100 x 3.75 + 300 x 6.00 per 1M.
        cost = cost_of_usage(SONNET_1M, usage(1000, cache_write_tokens=400, cache_write_1h_tokens=300))
        assert cost.input_cost == D("0.003975")

    def test_every_component_at_once(self) -> None:
        # 377 plain, 1000 read, 100 + 200 written, 65 out (thinking included).
        shape = usage(1677, 65, cached_tokens=1000, cache_write_tokens=300, cache_write_1h_tokens=200)
        assert cost_breakdown(SONNET_1M, shape) == CostBreakdown(
            input=D("0.001131"),
            cached=D("0.0003"),
            cache_write_5m=D("0.000375"),
            cache_write_1h=D("0.0012"),
            output=D("0.000975"),
        )
        assert cost_of_usage(SONNET_1M, shape) == Cost(D("0.003006"), D("0.000975"), D("0.003981"))

    def test_without_write_rates_writes_pay_the_input_rate(self) -> None:
        shape = usage(1000, cache_write_tokens=400, cache_write_1h_tokens=100)
        assert cost_of_usage(NO_CACHE_RATE, shape) == cost_of(NO_CACHE_RATE, 1000, 0)

    def test_without_a_1_hour_rate_1_hour_writes_pay_the_5_minute_rate(self) -> None:
        rates = Rates(input_per_1m=D("1"), output_per_1m=D("1"), cache_write_5m_per_1m=D("1.25"))
        # 500 x 1 + 500 x 1.25 per 1M: the 1-hour part falls back to the 5-minute rate.
        assert cost_of_usage(
            rates, usage(1000, cache_write_tokens=500, cache_write_1h_tokens=500)
        ).input_cost == D("0.001125")

    def test_reasoning_tokens_are_output_and_are_not_counted_twice(self) -> None:
        # completion_tokens already include reasoning (and Gemini thoughts): reasoning_tokens adds nothing.
        assert cost_of_usage(GPT_4O_MINI, usage(0, 100, reasoning_tokens=80)).output_cost == D("0.00006")

    def test_cost_of_is_cost_of_usage_without_cache_writes(self) -> None:
        for prompt, completion, cached in [(23, 8, 0), (1000, 200, 600), (3, 0, 3)]:
            shape = usage(prompt, completion, cached_tokens=cached)
            assert cost_of(CLAUDE_SONNET, prompt, completion, cached) == cost_of_usage(CLAUDE_SONNET, shape)

    def test_the_input_side_is_rounded_once_and_the_breakdown_adds_up_to_it(self) -> None:
        # Each part is 0.00000000004: alone each rounds to 0, together 0.00000000016 rounds to 2E-10.
        tiny = D("0.00004")
        rates = Rates(
            input_per_1m=tiny,
            output_per_1m=D("0"),
            cached_input_per_1m=tiny,
            cache_write_5m_per_1m=tiny,
            cache_write_1h_per_1m=tiny,
        )
        shape = usage(4, cached_tokens=1, cache_write_tokens=2, cache_write_1h_tokens=1)
        parts = cost_breakdown(rates, shape)
        assert cost_of_usage(rates, shape).input_cost == D("2E-10")
        assert parts.input + parts.cached + parts.cache_write_5m + parts.cache_write_1h == D("2E-10")
        assert parts.input_cost == D("2E-10") and parts.total == D("2E-10")
        for amount in (parts.input, parts.cached, parts.cache_write_5m, parts.cache_write_1h, parts.output):
            assert amount.as_tuple().exponent == -10

    @pytest.mark.parametrize(
        ("counts", "message"),
        [
            (
                {"cached_tokens": 6, "cache_write_tokens": 5},
                r"cached_tokens \+ cache_write_tokens \(11\) exceed",
            ),
            ({"cache_write_tokens": 11}, "exceed prompt_tokens"),
            ({"cache_write_tokens": 2, "cache_write_1h_tokens": 3}, r"cache_write_1h_tokens \(3\) exceed"),
            ({"cache_write_1h_tokens": -1}, "must not be negative"),
        ],
    )
    def test_impossible_usage_is_refused(self, counts: dict[str, int], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            cost_of_usage(SONNET_1M, usage(10, **counts))


class TestLongContextTiers:
    def test_a_prompt_at_the_threshold_pays_the_base_rates(self) -> None:
        parts = cost_breakdown(SONNET_1M, usage(200_000, 1000))
        assert not parts.long_context
        assert (parts.input, parts.output) == (D("0.6"), D("0.015"))

    def test_a_prompt_above_the_threshold_puts_every_token_on_the_long_tier(self) -> None:
        # 200,001 prompt tokens: 100,001 plain at 6.00, 50,000 read at 0.60, 30,000 5-minute writes at
        # 7.50 and 20,000 1-hour writes at 12.00 (1.25x and 2x the long input rate); output at 22.50.
        shape = usage(
            200_001, 1000, cached_tokens=50_000, cache_write_tokens=50_000, cache_write_1h_tokens=20_000
        )
        assert cost_breakdown(SONNET_1M, shape) == CostBreakdown(
            input=D("0.600006"),
            cached=D("0.03"),
            cache_write_5m=D("0.225"),
            cache_write_1h=D("0.24"),
            output=D("0.0225"),
            long_context=True,
        )

    def test_gemini_2_5_pro_above_200k_doubles_input_and_cache_reads(self) -> None:
        # 250,000 prompt tokens, 50,000 of them cached; 1,000 output tokens (thoughts included).
        cost = cost_of_usage(GEMINI_PRO, usage(250_000, 1000, cached_tokens=50_000, reasoning_tokens=800))
        assert cost == Cost(input_cost=D("0.5125"), output_cost=D("0.015"), total=D("0.5275"))

    def test_a_missing_long_rate_keeps_the_base_rate(self) -> None:
        rates = Rates(
            input_per_1m=D("1"),
            output_per_1m=D("4"),
            cached_input_per_1m=D("0.1"),
            long_context_threshold=10,
            long_output_per_1m=D("6"),
        )
        # No long input or cached rate: input and cache reads keep theirs, output switches.
        parts = cost_breakdown(rates, usage(1_000_000, 1_000_000, cached_tokens=500_000))
        assert (parts.input, parts.cached, parts.output) == (D("0.5"), D("0.05"), D("6"))

    def test_without_a_cached_rate_cache_reads_pay_the_long_input_rate(self) -> None:
        rates = Rates(
            input_per_1m=D("1"), output_per_1m=D("1"), long_context_threshold=0, long_input_per_1m=D("2")
        )
        parts = cost_breakdown(rates, usage(1_000_000, cached_tokens=1_000_000, cache_write_tokens=0))
        assert parts.cached == D("2")

    def test_without_write_rates_long_tier_writes_pay_the_long_input_rate(self) -> None:
        rates = Rates(
            input_per_1m=D("1"), output_per_1m=D("1"), long_context_threshold=0, long_input_per_1m=D("2")
        )
        parts = cost_breakdown(
            rates, usage(1_000_000, cache_write_tokens=1_000_000, cache_write_1h_tokens=400_000)
        )
        assert (parts.cache_write_5m, parts.cache_write_1h) == (D("1.2"), D("0.8"))

    def test_with_no_long_input_rate_or_a_free_base_input_the_write_rates_are_not_scaled(self) -> None:
        for base_input, long_input in [(D("1"), None), (D("0"), D("2"))]:
            rates = Rates(
                input_per_1m=base_input,
                output_per_1m=D("1"),
                cache_write_5m_per_1m=D("1.25"),
                long_context_threshold=0,
                long_input_per_1m=long_input,
            )
            parts = cost_breakdown(rates, usage(1_000_000, cache_write_tokens=1_000_000))
            assert parts.cache_write_5m == D("1.25")

    def test_a_scaled_write_rate_that_is_no_finite_decimal_still_prices_exactly(self) -> None:
        # The long 5-minute rate is 0.00005 x 1 / 3 (0.0000166...): 3 such writes are exactly
        # 0.00000000005, half a quantum, which rounds up; rounding the rate first would give 0.
        rates = Rates(
            input_per_1m=D("3"),
            output_per_1m=D("0"),
            cache_write_5m_per_1m=D("0.00005"),
            long_context_threshold=0,
            long_input_per_1m=D("1"),
        )
        assert cost_of_usage(rates, usage(3, cache_write_tokens=3)).input_cost == D("1E-10")


class TestCostOf:
    def test_the_spec_example_prices_to_the_exact_amounts(self) -> None:
        # 23 prompt + 8 completion tokens on gpt-4o-mini: the numbers in the API contract's example.
        assert cost_of(GPT_4O_MINI, 23, 8) == Cost(
            input_cost=D("0.00000345"), output_cost=D("0.0000048"), total=D("0.00000825")
        )

    def test_amounts_are_decimals_at_ten_places(self) -> None:
        cost = cost_of(GPT_4O_MINI, 23, 8)
        for amount in (cost.input_cost, cost.output_cost, cost.total):
            assert isinstance(amount, Decimal)
            assert amount.as_tuple().exponent == -10

    def test_cached_tokens_pay_the_cached_rate(self) -> None:
        # 1000 prompt tokens of which 600 cached: 400 x 3.00 + 600 x 0.30 per 1M = 0.0012 + 0.00018.
        cost = cost_of(CLAUDE_SONNET, 1000, 200, cached_tokens=600)
        assert cost.input_cost == D("0.00138")
        assert cost.output_cost == D("0.003")
        assert cost.total == D("0.00438")

    def test_cached_tokens_pay_the_input_rate_when_there_is_no_cached_rate(self) -> None:
        assert cost_of(NO_CACHE_RATE, 1000, 0, cached_tokens=600) == cost_of(NO_CACHE_RATE, 1000, 0)
        assert cost_of(NO_CACHE_RATE, 1000, 0).input_cost == D("0.0005")

    def test_a_fully_cached_prompt_pays_only_the_cached_rate(self) -> None:
        assert cost_of(GPT_4O_MINI, 1_000_000, 0, cached_tokens=1_000_000).input_cost == D("0.075")

    def test_zero_tokens_cost_zero(self) -> None:
        assert cost_of(GPT_4O_MINI, 0, 0) == Cost(D("0E-10"), D("0E-10"), D("0E-10"))
        assert cost_of(GPT_4O_MINI, 0, 0).total == 0

    def test_free_models_cost_zero(self) -> None:
        free = Rates(input_per_1m=D("0"), output_per_1m=D("0"))
        assert cost_of(free, 123_456, 7_890).total == 0

    def test_it_rounds_half_up_at_the_tenth_decimal(self) -> None:
        # 1 token at 0.00005 per 1M = 0.00000000005 exactly: half a quantum rounds up.
        half = Rates(input_per_1m=D("0.00005"), output_per_1m=D("0.00004"))
        cost = cost_of(half, 1, 1)
        assert cost.input_cost == D("0.0000000001")
        assert cost.output_cost == D("0")  # 0.00000000004 rounds down
        # 3 tokens at 0.000035 per 1M = 0.000000000105: rounds to 0.0000000001.
        assert cost_of(Rates(input_per_1m=D("0.000035"), output_per_1m=D("0")), 3, 0).input_cost == D("1E-10")

    def test_uncached_and_cached_parts_are_rounded_once_together(self) -> None:
        # Each part alone is 0.00000000004 (would round to 0); together 0.00000000008 rounds to 1E-10.
        rates = Rates(input_per_1m=D("0.00004"), output_per_1m=D("0"), cached_input_per_1m=D("0.00004"))
        assert cost_of(rates, 2, 0, cached_tokens=1).input_cost == D("1E-10")

    def test_total_is_exactly_the_sum_of_the_rounded_parts(self) -> None:
        rates = Rates(input_per_1m=D("0.00005"), output_per_1m=D("0.00005"))
        cost = cost_of(rates, 1, 1)
        assert cost.total == cost.input_cost + cost.output_cost == D("0.0000000002")

    def test_big_numbers_stay_exact(self) -> None:
        # A billion tokens at four-digit rates with ten decimals: 999,999,999 x 9876.5432109876 / 1M is
        # 9876543.2011110567890124 exactly, which rounds half-up to ...110568.
        rates = Rates(input_per_1m=D("1234.5678901234"), output_per_1m=D("9876.5432109876"))
        cost = cost_of(rates, 1_000_000_000, 999_999_999)
        assert cost.input_cost == D("1234567.8901234")
        assert cost.output_cost == D("9876543.2011110568")
        assert cost.total == D("11111111.0912344568")

    @pytest.mark.parametrize(
        ("prompt", "completion", "cached"),
        [(-1, 0, 0), (0, -1, 0), (10, 0, -1)],
    )
    def test_negative_token_counts_are_refused(self, prompt: int, completion: int, cached: int) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            cost_of(GPT_4O_MINI, prompt, completion, cached_tokens=cached)

    def test_more_cached_than_prompt_tokens_is_refused(self) -> None:
        with pytest.raises(ValueError, match="exceed prompt_tokens"):
            cost_of(GPT_4O_MINI, 10, 0, cached_tokens=11)

    def test_non_integer_token_counts_are_refused(self) -> None:
        with pytest.raises(TypeError):
            cost_of(GPT_4O_MINI, 1.5, 0)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            cost_of(GPT_4O_MINI, True, 0)


class TestWorstCaseCost:
    def test_it_charges_every_prompt_token_at_the_input_rate_plus_the_full_output(self) -> None:
        assert worst_case_cost(GPT_4O_MINI, 1000, 4096) == D("0.00015") + D("0.0024576")

    def test_it_ignores_the_cache_discount(self) -> None:
        assert worst_case_cost(CLAUDE_SONNET, 1000, 0) == cost_of(CLAUDE_SONNET, 1000, 0).total

    def test_it_covers_the_actual_cost_even_where_rounding_differs(self) -> None:
        # Two half-quanta round up separately: the worst case must be rounded the same way.
        rates = Rates(input_per_1m=D("0.00005"), output_per_1m=D("0.00005"))
        assert worst_case_cost(rates, 1, 1) == cost_of(rates, 1, 1).total == D("2E-10")

    def test_it_covers_a_cached_rate_above_the_input_rate(self) -> None:
        odd = Rates(input_per_1m=D("1"), output_per_1m=D("1"), cached_input_per_1m=D("2"))
        assert worst_case_cost(odd, 100, 0) >= cost_of(odd, 100, 0, cached_tokens=100).total

    def test_zero(self) -> None:
        assert worst_case_cost(GPT_4O_MINI, 0, 0) == 0

    def test_it_covers_a_prompt_written_to_the_cache_for_an_hour(self) -> None:
        # Anthropic: the dearest prompt token is a 1-hour write (2x input).
        assert worst_case_cost(SONNET_1M, 1000, 0) == D("0.006")
        every_token_1h = usage(1000, cache_write_tokens=1000, cache_write_1h_tokens=1000)
        assert cost_of_usage(SONNET_1M, every_token_1h).total == D("0.006")

    def test_above_the_threshold_it_prices_at_the_long_tier(self) -> None:
        # 200,001 prompt tokens at 12.00 (long 1-hour writes) + 1,000 output at 22.50.
        assert worst_case_cost(SONNET_1M, 200_001, 1000) == D("2.400012") + D("0.0225")
        assert worst_case_cost(SONNET_1M, 200_000, 1000) == D("1.2") + D("0.015")

    def test_it_covers_a_scaled_write_rate_that_is_no_finite_decimal(self) -> None:
        rates = Rates(
            input_per_1m=D("3"),
            output_per_1m=D("0"),
            cache_write_1h_per_1m=D("1"),
            long_context_threshold=0,
            long_input_per_1m=D("1"),
        )
        shape = usage(7, cache_write_tokens=7, cache_write_1h_tokens=7)
        assert cost_of_usage(rates, shape).total <= worst_case_cost(rates, 7, 0)


class TestMaxOutputTokensAffordable:
    def test_it_finds_the_largest_count_that_fits(self) -> None:
        # Prompt 1000 at 0.15/1M = 0.00015; each output token 0.0000006; 0.001 budget leaves 0.00085.
        n = max_output_tokens_affordable(GPT_4O_MINI, 1000, D("0.001"))
        assert n == 1416
        assert worst_case_cost(GPT_4O_MINI, 1000, n) <= D("0.001") < worst_case_cost(GPT_4O_MINI, 1000, n + 1)

    def test_an_exact_fit_is_affordable(self) -> None:
        budget = worst_case_cost(GPT_4O_MINI, 1000, 500)
        assert max_output_tokens_affordable(GPT_4O_MINI, 1000, budget) == 500

    def test_it_uses_half_up_rounding_at_the_boundary(self) -> None:
        # Each output token costs 0.00000000004: 1 token rounds to 0, 2 tokens to 1E-10, 3 to 1E-10,
        # 4 tokens (0.00000000016) to 2E-10. A zero budget affords one token; 1E-10 affords three.
        rates = Rates(input_per_1m=D("0"), output_per_1m=D("0.00004"))
        assert max_output_tokens_affordable(rates, 0, D("0")) == 1
        assert max_output_tokens_affordable(rates, 0, D("1E-10")) == 3

    def test_it_is_zero_when_the_prompt_alone_does_not_fit(self) -> None:
        assert max_output_tokens_affordable(GPT_4O_MINI, 1000, D("0.0001")) == 0

    def test_it_is_zero_when_the_prompt_fits_but_no_output_token_does(self) -> None:
        assert max_output_tokens_affordable(GPT_4O_MINI, 1000, D("0.0001500005")) == 0

    def test_it_is_zero_for_a_negative_or_zero_budget(self) -> None:
        assert max_output_tokens_affordable(GPT_4O_MINI, 1000, D("-5")) == 0
        assert max_output_tokens_affordable(GPT_4O_MINI, 1000, D("0")) == 0

    def test_it_is_capped_at_the_limit(self) -> None:
        assert max_output_tokens_affordable(GPT_4O_MINI, 1000, D("100"), limit=16384) == 16384
        assert max_output_tokens_affordable(GPT_4O_MINI, 1000, D("0.001"), limit=99_999) == 1416

    def test_free_output_needs_a_limit(self) -> None:
        free_output = Rates(input_per_1m=D("1"), output_per_1m=D("0"))
        assert max_output_tokens_affordable(free_output, 10, D("1"), limit=4096) == 4096
        with pytest.raises(ValueError, match="pass limit"):
            max_output_tokens_affordable(free_output, 10, D("1"))

    def test_big_budgets_and_odd_rates(self) -> None:
        rates = Rates(input_per_1m=D("3"), output_per_1m=D("7.123456789"))
        budget = D("1000000")
        n = max_output_tokens_affordable(rates, 12_345, budget)
        assert worst_case_cost(rates, 12_345, n) <= budget < worst_case_cost(rates, 12_345, n + 1)

    def test_above_the_threshold_it_counts_the_long_output_rate(self) -> None:
        budget = D("5")
        n = max_output_tokens_affordable(SONNET_1M, 200_001, budget)
        assert worst_case_cost(SONNET_1M, 200_001, n) <= budget < worst_case_cost(SONNET_1M, 200_001, n + 1)
        # (5 - 2.400012) / 22.50 per 1M: 115,555 tokens, where the base 15.00 would have given 173,332.
        assert n == 115_555

    def test_a_float_budget_is_refused(self) -> None:
        with pytest.raises(TypeError):
            max_output_tokens_affordable(GPT_4O_MINI, 1000, 0.5)  # type: ignore[arg-type]


class TestJsonRendering:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (D("0.0000082500"), "0.00000825"),
            (D("0.00000825"), "0.00000825"),
            (D("8.25E-8"), "0.0000000825"),
            (D("0.0000000001"), "0.0000000001"),
            (D("12.5000000000"), "12.5"),
            (D("100"), "100"),
            (D("1E+2"), "100"),
            (D("0E-10"), "0"),
            (D("-0"), "0"),
            (D("0"), "0"),
            (D("-1.50"), "-1.5"),
            (D("11111111.0912344568"), "11111111.0912344568"),
        ],
    )
    def test_format_usd_is_positional_without_trailing_zeros(self, value: Decimal, text: str) -> None:
        assert format_usd(value) == text

    def test_decimal_to_json_normalizes_without_changing_the_value(self) -> None:
        assert decimal_to_json(D("0.0000048000")) == D("0.0000048")
        assert decimal_to_json(D("0.0000048000")).as_tuple().exponent == -7
        assert str(decimal_to_json(D("0E-10"))) == "0"

    @pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), D("-Infinity")])
    def test_non_finite_values_are_refused(self, bad: Decimal) -> None:
        with pytest.raises(ValueError):
            format_usd(bad)

    def test_floats_are_refused(self) -> None:
        with pytest.raises(TypeError):
            decimal_to_json(0.1)  # type: ignore[arg-type]

    def test_the_documented_orjson_recipe_emits_a_plain_json_number(self) -> None:
        cost = cost_of(GPT_4O_MINI, 23, 8)

        def default(obj: object) -> orjson.Fragment:
            if isinstance(obj, Decimal):
                return orjson.Fragment(format_usd(obj))
            raise TypeError

        body = orjson.dumps({"total_cost_usd": cost.total, "tiny": D("8.25E-8")}, default=default)
        assert body == b'{"total_cost_usd":0.00000825,"tiny":0.0000000825}'
        assert json.loads(body, parse_float=Decimal) == {
            "total_cost_usd": D("0.00000825"),
            "tiny": D("8.25E-8"),
        }


class TestInvariants:
    """Seeded random checks of the properties budget enforcement relies on."""

    @staticmethod
    def _random_rates(rng: random.Random) -> Rates:
        def rate() -> Decimal:
            return Decimal(rng.randint(0, 10**12)).scaleb(-10)  # 0 .. 100 with ten decimals

        def maybe(chance: float) -> Decimal | None:
            return rate() if rng.random() < chance else None

        long_tier = rng.random() < 0.5
        return Rates(
            input_per_1m=rate(),
            output_per_1m=rate(),
            cached_input_per_1m=maybe(0.7),
            cache_write_5m_per_1m=maybe(0.5),
            cache_write_1h_per_1m=maybe(0.5),
            long_context_threshold=rng.choice([0, 1000, 200_000]) if long_tier else None,
            long_input_per_1m=maybe(0.8) if long_tier else None,
            long_output_per_1m=maybe(0.8) if long_tier else None,
            long_cached_input_per_1m=maybe(0.5) if long_tier else None,
        )

    def test_the_actual_cost_never_exceeds_the_worst_case(self) -> None:
        rng = random.Random(20251016)
        for _ in range(2000):
            rates = self._random_rates(rng)
            prompt = rng.randint(0, 2_000_000)
            cached = rng.randint(0, prompt)
            written = rng.randint(0, prompt - cached)
            max_out = rng.randint(0, 200_000)
            shape = usage(
                prompt,
                rng.randint(0, max_out),
                cached_tokens=cached,
                cache_write_tokens=written,
                cache_write_1h_tokens=rng.randint(0, written),
            )
            assert cost_of_usage(rates, shape).total <= worst_case_cost(rates, prompt, max_out)

    def test_the_affordable_count_is_the_largest_that_fits(self) -> None:
        rng = random.Random(7)
        for _ in range(500):
            rates = self._random_rates(rng)
            prompt = rng.randint(0, 400_000)
            if rates.tier(prompt).output == 0:
                continue
            budget = Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(4, 12))
            n = max_output_tokens_affordable(rates, prompt, budget)
            if n == 0:
                assert worst_case_cost(rates, prompt, 1) > budget
            else:
                assert worst_case_cost(rates, prompt, n) <= budget
                assert worst_case_cost(rates, prompt, n + 1) > budget
