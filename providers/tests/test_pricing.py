"""Cost arithmetic: exact Decimal amounts, cached-token pricing, rounding and budget-fitting edge cases."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import orjson
import pytest

from providers.pricing import (
    Cost,
    Rates,
    cost_of,
    decimal_to_json,
    format_usd,
    max_output_tokens_affordable,
    worst_case_cost,
)

D = Decimal
GPT_4O_MINI = Rates(input_per_1m=D("0.15"), output_per_1m=D("0.60"), cached_input_per_1m=D("0.075"))
CLAUDE_SONNET = Rates(input_per_1m=D("3.00"), output_per_1m=D("15.00"), cached_input_per_1m=D("0.30"))
NO_CACHE_RATE = Rates(input_per_1m=D("0.50"), output_per_1m=D("1.50"))


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

        cached = rate() if rng.random() < 0.7 else None
        return Rates(input_per_1m=rate(), output_per_1m=rate(), cached_input_per_1m=cached)

    def test_the_actual_cost_never_exceeds_the_worst_case(self) -> None:
        rng = random.Random(20251016)
        for _ in range(2000):
            rates = self._random_rates(rng)
            prompt = rng.randint(0, 2_000_000)
            cached = rng.randint(0, prompt)
            max_out = rng.randint(0, 200_000)
            completion = rng.randint(0, max_out)
            assert cost_of(rates, prompt, completion, cached).total <= worst_case_cost(rates, prompt, max_out)

    def test_the_affordable_count_is_the_largest_that_fits(self) -> None:
        rng = random.Random(7)
        for _ in range(500):
            rates = self._random_rates(rng)
            if rates.output_per_1m == 0:
                continue
            prompt = rng.randint(0, 200_000)
            budget = Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(4, 12))
            n = max_output_tokens_affordable(rates, prompt, budget)
            if n == 0:
                assert worst_case_cost(rates, prompt, 1) > budget
            else:
                assert worst_case_cost(rates, prompt, n) <= budget
                assert worst_case_cost(rates, prompt, n + 1) > budget
