"""Routing engine: filtering, deterministic ranking and manual planning, without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from providers.pricing import Rates, cost_of
from routing.engine import (
    Candidate,
    MaxTokensUnfit,
    ModelNotFound,
    Needs,
    NoCandidates,
    RejectReason,
    plan,
    plan_manual,
    rank_cost_optimized,
    rank_latency_optimized,
    resolve_model,
)
from routing.filtering import estimate_cost, filter_candidates

D = Decimal
TODAY = date(2025, 10, 16)


def make(model_id: str, **overrides: Any) -> Candidate:
    fields: dict[str, Any] = {
        "model_id": model_id,
        "provider": "openai",
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "rates": Rates(input_per_1m=D("1"), output_per_1m=D("2")),
        "supports_tools": True,
        "supports_vision": True,
        "supports_json": True,
    }
    fields.update(overrides)
    return Candidate(**fields)


def needs(**overrides: Any) -> Needs:
    fields: dict[str, Any] = {"prompt_tokens": 1_000, "today": TODAY}
    fields.update(overrides)
    return Needs(**fields)


MINI = make(
    "gpt-4o-mini",
    rates=Rates(input_per_1m=D("0.15"), output_per_1m=D("0.60"), cached_input_per_1m=D("0.075")),
    p50_latency_ms=700.0,
)
GPT4O = make(
    "gpt-4o",
    rates=Rates(input_per_1m=D("2.50"), output_per_1m=D("10.00")),
    p50_latency_ms=500.0,
)
SONNET = make(
    "claude-sonnet-4-5-20250929",
    provider="anthropic",
    aliases=("claude-sonnet-4.5", "claude-sonnet-4-5"),
    context_window=200_000,
    max_output_tokens=64_000,
    rates=Rates(input_per_1m=D("3.00"), output_per_1m=D("15.00")),
    p50_latency_ms=900.0,
)
DEEPSEEK = make(
    "deepseek-chat",
    provider="deepseek",
    context_window=64_000,
    max_output_tokens=8_192,
    supports_vision=False,
    rates=Rates(input_per_1m=D("0.28"), output_per_1m=D("0.42")),
    p50_latency_ms=None,
)
CATALOG = [GPT4O, SONNET, DEEPSEEK, MINI]


def ids(items: list[Any]) -> list[str]:
    return [getattr(item, "candidate", item).model_id for item in items]


def reasons(rejections: Any) -> dict[str, RejectReason]:
    return {r.model_id: r.reason for r in rejections}


class TestEstimatedCost:
    def test_it_prices_the_prompt_plus_the_expected_output(self) -> None:
        assert estimate_cost(MINI, needs(prompt_tokens=1_000, expected_output_tokens=500)) == D("0.00045")

    def test_the_output_estimate_never_exceeds_max_tokens_or_the_model_limit(self) -> None:
        assert estimate_cost(MINI, needs(expected_output_tokens=500, max_tokens=100)) == (
            cost_of(MINI.rates, 1_000, 100).total  # type: ignore[arg-type]
        )
        small = replace(MINI, max_output_tokens=50)
        assert estimate_cost(small, needs(expected_output_tokens=500)) == cost_of(MINI.rates, 1_000, 50).total  # type: ignore[arg-type]


class TestCostOptimized:
    def test_it_picks_the_cheapest_model(self) -> None:
        kept, _ = filter_candidates(CATALOG, needs())
        ranked = rank_cost_optimized(kept, needs())
        assert ids(ranked) == ["gpt-4o-mini", "deepseek-chat", "gpt-4o", "claude-sonnet-4-5-20250929"]
        assert ranked[0].estimated_cost == D("0.00045")
        assert "0.00045" in ranked[0].reason

    def test_cheapness_depends_on_the_request_shape(self) -> None:
        # DeepSeek's input is dearer than mini's, its output cheaper: a long answer flips the order.
        ranked = rank_cost_optimized([MINI, DEEPSEEK], needs(prompt_tokens=100, expected_output_tokens=8_000))
        assert ids(ranked) == ["deepseek-chat", "gpt-4o-mini"]

    def test_cost_ties_go_to_the_lower_p50_latency(self) -> None:
        slow = make("a-slow", p50_latency_ms=900.0)
        fast = make("z-fast", p50_latency_ms=300.0)
        assert ids(rank_cost_optimized([slow, fast], needs())) == ["z-fast", "a-slow"]

    def test_a_model_without_latency_data_counts_as_slowest(self) -> None:
        unknown = make("a-unknown", p50_latency_ms=None)
        slow = make("z-slow", p50_latency_ms=5_000.0)
        assert ids(rank_cost_optimized([unknown, slow], needs())) == ["z-slow", "a-unknown"]

    def test_full_ties_go_to_the_model_id_whatever_the_input_order(self) -> None:
        trio = [make("m-b"), make("m-c"), make("m-a")]
        for order in (trio, trio[::-1], [trio[1], trio[0], trio[2]]):
            assert ids(rank_cost_optimized(order, needs())) == ["m-a", "m-b", "m-c"]

    def test_the_same_model_on_two_providers_is_ordered_by_provider(self) -> None:
        a = make("same", provider="zeta")
        b = make("same", provider="alpha")
        assert [r.candidate.provider for r in rank_cost_optimized([a, b], needs())] == ["alpha", "zeta"]


class TestLatencyOptimized:
    def test_it_ranks_by_p50_latency_with_unknown_last(self) -> None:
        kept, _ = filter_candidates(CATALOG, needs())
        ranked = rank_latency_optimized(kept, needs())
        assert ids(ranked) == ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5-20250929", "deepseek-chat"]

    def test_latency_ties_go_to_the_cheaper_then_the_model_id(self) -> None:
        dear = make("a-dear", p50_latency_ms=400.0, rates=Rates(input_per_1m=D("5"), output_per_1m=D("5")))
        cheap = make("z-cheap", p50_latency_ms=400.0, rates=Rates(input_per_1m=D("1"), output_per_1m=D("1")))
        twin = make("y-cheap", p50_latency_ms=400.0, rates=Rates(input_per_1m=D("1"), output_per_1m=D("1")))
        assert ids(rank_latency_optimized([dear, cheap, twin], needs())) == ["y-cheap", "z-cheap", "a-dear"]


class TestFiltering:
    def test_it_skips_models_whose_context_is_too_small(self) -> None:
        kept, rejections = filter_candidates(CATALOG, needs(prompt_tokens=100_000))
        assert "deepseek-chat" not in ids(kept)
        assert reasons(rejections) == {"deepseek-chat": RejectReason.CONTEXT_TOO_SMALL}

    def test_the_context_must_hold_max_tokens_when_given(self) -> None:
        # 60,000 + 500 expected fits deepseek's 64k window; 60,000 + 8,000 max_tokens does not.
        kept, _ = filter_candidates([DEEPSEEK], needs(prompt_tokens=60_000))
        assert ids(kept) == ["deepseek-chat"]
        kept, rejections = filter_candidates([DEEPSEEK], needs(prompt_tokens=60_000, max_tokens=8_000))
        assert kept == []
        assert reasons(rejections) == {"deepseek-chat": RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT}

    def test_a_prompt_too_long_by_itself_is_the_prompts_fault_whatever_max_tokens_says(self) -> None:
        _, rejections = filter_candidates([DEEPSEEK], needs(prompt_tokens=64_000, max_tokens=100_000))
        assert reasons(rejections) == {"deepseek-chat": RejectReason.CONTEXT_TOO_SMALL}

    def test_a_prompt_exactly_filling_the_window_fits(self) -> None:
        kept, _ = filter_candidates([DEEPSEEK], needs(prompt_tokens=63_500, expected_output_tokens=500))
        assert ids(kept) == ["deepseek-chat"]

    def test_it_skips_models_that_cannot_write_max_tokens(self) -> None:
        kept, rejections = filter_candidates(CATALOG, needs(max_tokens=20_000))
        assert ids(kept) == ["claude-sonnet-4-5-20250929"]
        assert reasons(rejections)["gpt-4o"] == RejectReason.MAX_TOKENS_TOO_LARGE

    @pytest.mark.parametrize(
        ("flag", "capability", "reason"),
        [
            ("uses_tools", "supports_tools", RejectReason.NO_TOOLS),
            ("uses_images", "supports_vision", RejectReason.NO_VISION),
            ("uses_json", "supports_json", RejectReason.NO_JSON),
        ],
    )
    def test_it_skips_models_missing_a_used_capability(
        self, flag: str, capability: str, reason: RejectReason
    ) -> None:
        lacking = make("lacking", **{capability: False})
        able = make("able")
        kept, rejections = filter_candidates([lacking, able], needs(**{flag: True}))
        assert ids(kept) == ["able"]
        assert reasons(rejections) == {"lacking": reason}

    def test_unused_capabilities_do_not_matter(self) -> None:
        bare = make("bare", supports_tools=False, supports_vision=False, supports_json=False)
        assert ids(filter_candidates([bare], needs())[0]) == ["bare"]

    def test_provider_filter_keeps_only_the_listed_providers(self) -> None:
        kept, rejections = filter_candidates(CATALOG, needs(provider_filter=("anthropic", "deepseek")))
        assert sorted(ids(kept)) == ["claude-sonnet-4-5-20250929", "deepseek-chat"]
        assert set(reasons(rejections).values()) == {RejectReason.PROVIDER_FILTERED}

    def test_max_cost_drops_models_estimated_above_it(self) -> None:
        # Estimates for 1000 prompt + 500 output: mini 0.00045, deepseek 0.00049, 4o 0.0075, sonnet 0.0105.
        kept, rejections = filter_candidates(CATALOG, needs(max_cost=D("0.00049")))
        assert sorted(ids(kept)) == ["deepseek-chat", "gpt-4o-mini"]  # equal to max_cost is kept
        assert reasons(rejections) == {
            "gpt-4o": RejectReason.OVER_MAX_COST,
            "claude-sonnet-4-5-20250929": RejectReason.OVER_MAX_COST,
        }

    def test_models_past_their_deprecation_date_are_dropped(self) -> None:
        retired = make("retired", deprecation_date=date(2025, 10, 15))
        retiring_today = make("retiring-today", deprecation_date=TODAY)
        kept, rejections = filter_candidates([retired, retiring_today], needs())
        assert ids(kept) == ["retiring-today"]
        assert reasons(rejections) == {"retired": RejectReason.DEPRECATED}

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"active": False}, RejectReason.INACTIVE),
            ({"provider_active": False}, RejectReason.PROVIDER_INACTIVE),
            ({"provider_configured": False}, RejectReason.PROVIDER_NOT_CONFIGURED),
            ({"rates": None}, RejectReason.NO_PRICE),
        ],
    )
    def test_unusable_models_are_dropped(self, overrides: dict[str, Any], reason: RejectReason) -> None:
        kept, rejections = filter_candidates([make("m", **overrides)], needs())
        assert kept == []
        assert reasons(rejections) == {"m": reason}

    def test_the_first_failing_check_is_recorded(self) -> None:
        both = make("both", active=False, context_window=10)
        _, rejections = filter_candidates([both], needs())
        assert reasons(rejections) == {"both": RejectReason.INACTIVE}


class TestCooldown:
    def test_models_in_cooldown_are_skipped_while_others_remain(self) -> None:
        cooling = replace(MINI, in_cooldown=True)
        kept, rejections = filter_candidates([cooling, GPT4O], needs())
        assert ids(kept) == ["gpt-4o"]
        assert reasons(rejections) == {"gpt-4o-mini": RejectReason.IN_COOLDOWN}

    def test_cooldown_never_empties_the_field(self) -> None:
        cooling = [replace(MINI, in_cooldown=True), replace(GPT4O, in_cooldown=True)]
        kept, rejections = filter_candidates(cooling, needs())
        assert sorted(ids(kept)) == ["gpt-4o", "gpt-4o-mini"]
        assert rejections == []

    def test_a_model_dropped_for_another_reason_does_not_count_as_an_alternative(self) -> None:
        cooling = replace(MINI, in_cooldown=True)
        kept, _ = filter_candidates([cooling, replace(GPT4O, active=False)], needs())
        assert ids(kept) == ["gpt-4o-mini"]


class TestResolveModel:
    def test_it_resolves_by_model_id_then_alias(self) -> None:
        assert resolve_model("gpt-4o", CATALOG) is GPT4O
        assert resolve_model("claude-sonnet-4.5", CATALOG) is SONNET
        assert resolve_model("claude-sonnet-4-5", CATALOG) is SONNET

    def test_an_exact_model_id_beats_another_models_alias(self) -> None:
        impostor = make("impostor", aliases=("gpt-4o",))
        assert resolve_model("gpt-4o", [impostor, GPT4O]) is GPT4O

    def test_names_are_case_sensitive(self) -> None:
        assert resolve_model("GPT-4o", CATALOG) is None
        assert resolve_model("Claude-Sonnet-4.5", CATALOG) is None

    def test_unknown_names_resolve_to_none(self) -> None:
        assert resolve_model("gpt-9", CATALOG) is None

    def test_a_usable_provider_is_preferred_for_a_model_served_twice(self) -> None:
        down = make("shared", provider="first", provider_active=False)
        up = make("shared", provider="second")
        assert resolve_model("shared", [down, up]) is up


class TestPlanManual:
    def test_it_returns_the_model_then_its_fallbacks_in_order(self) -> None:
        chosen = plan_manual("claude-sonnet-4.5", ["gpt-4o", "deepseek-chat"], CATALOG, needs())
        assert ids(chosen) == ["claude-sonnet-4-5-20250929", "gpt-4o", "deepseek-chat"]

    def test_duplicates_are_removed_also_when_named_by_alias(self) -> None:
        chosen = plan_manual(
            "claude-sonnet-4.5", ["claude-sonnet-4-5-20250929", "gpt-4o", "gpt-4o"], CATALOG, needs()
        )
        assert ids(chosen) == ["claude-sonnet-4-5-20250929", "gpt-4o"]

    @pytest.mark.parametrize("position", ["model", "fallback"])
    def test_an_unknown_name_raises_model_not_found(self, position: str) -> None:
        model, fallbacks = ("gpt-9", []) if position == "model" else ("gpt-4o", ["gpt-9"])
        with pytest.raises(ModelNotFound) as info:
            plan_manual(model, fallbacks, CATALOG, needs())
        assert info.value.name == "gpt-9"
        assert info.value.reason == "unknown"
        assert str(info.value) == "Model 'gpt-9' not found or inactive"

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"active": False}, "inactive"),
            ({"provider_active": False}, "provider_inactive"),
            ({"provider_configured": False}, "provider_not_configured"),
            ({"rates": None}, "no_price"),
        ],
    )
    def test_an_unusable_model_is_not_found(self, overrides: dict[str, Any], reason: str) -> None:
        with pytest.raises(ModelNotFound) as info:
            plan_manual("m", [], [make("m", **overrides)], needs())
        assert info.value.reason == reason

    def test_deprecation_and_cooldown_do_not_apply(self) -> None:
        retired = make("retired", deprecation_date=date(2020, 1, 1), in_cooldown=True)
        assert ids(plan_manual("retired", [], [retired, GPT4O], needs())) == ["retired"]

    def test_capabilities_and_max_cost_do_not_apply(self) -> None:
        chosen = plan_manual("deepseek-chat", [], CATALOG, needs(uses_images=True, max_cost=D("0")))
        assert ids(chosen) == ["deepseek-chat"]

    def test_models_too_small_for_the_prompt_are_skipped_for_a_fallback_that_fits(self) -> None:
        chosen = plan_manual("deepseek-chat", ["claude-sonnet-4.5"], CATALOG, needs(prompt_tokens=150_000))
        assert ids(chosen) == ["claude-sonnet-4-5-20250929"]

    def test_a_prompt_too_long_for_every_named_model_is_context_exceeded(self) -> None:
        with pytest.raises(NoCandidates) as info:
            plan_manual("gpt-4o", ["deepseek-chat"], CATALOG, needs(prompt_tokens=300_000))
        assert info.value.context_exceeded
        assert reasons(info.value.rejections) == {
            "gpt-4o": RejectReason.CONTEXT_TOO_SMALL,
            "deepseek-chat": RejectReason.CONTEXT_TOO_SMALL,
        }


class TestPlan:
    def test_auto_means_cost_optimized(self) -> None:
        result = plan(mode="manual", model="auto", candidates=CATALOG, needs=needs())
        assert result.mode == "cost-optimized"
        assert ids(list(result.ranked))[0] == "gpt-4o-mini"
        assert result.considered == 4

    def test_manual_mode_labels_the_requested_model_and_fallbacks(self) -> None:
        result = plan(
            mode="manual", model="gpt-4o", fallbacks=["gpt-4o-mini"], candidates=CATALOG, needs=needs()
        )
        assert [r.reason for r in result.ranked] == ["manual: requested model", "manual: fallback"]
        assert result.ranked[0].estimated_cost == D("0.0075")
        assert ids(result.candidates) == ["gpt-4o", "gpt-4o-mini"]

    def test_manual_mode_needs_a_model(self) -> None:
        with pytest.raises(ValueError, match="model is required"):
            plan(mode="manual", model=None, candidates=CATALOG, needs=needs())

    def test_an_unknown_mode_is_refused(self) -> None:
        with pytest.raises(ValueError, match="Unknown mode"):
            plan(mode="random", model=None, candidates=CATALOG, needs=needs())

    def test_models_restrict_the_optimized_candidates(self) -> None:
        result = plan(
            mode="latency-optimized",
            model=None,
            models=["claude-sonnet-4.5", "deepseek-chat"],
            candidates=CATALOG,
            needs=needs(),
        )
        assert ids(list(result.ranked)) == ["claude-sonnet-4-5-20250929", "deepseek-chat"]
        assert result.considered == 2

    def test_an_unknown_name_in_models_is_not_found(self) -> None:
        with pytest.raises(ModelNotFound):
            plan(
                mode="cost-optimized",
                model=None,
                models=["gpt-4o", "gpt-9"],
                candidates=CATALOG,
                needs=needs(),
            )

    def test_it_is_deterministic(self) -> None:
        first = plan(mode="cost-optimized", model=None, candidates=CATALOG, needs=needs())
        second = plan(mode="cost-optimized", model=None, candidates=CATALOG[::-1], needs=needs())
        assert first.ranked == second.ranked


class TestNoCandidates:
    def test_a_prompt_longer_than_every_context_window_is_context_exceeded(self) -> None:
        with pytest.raises(NoCandidates) as info:
            plan(mode="cost-optimized", model=None, candidates=CATALOG, needs=needs(prompt_tokens=250_000))
        assert info.value.context_exceeded
        assert "context window" in str(info.value)

    def test_unusable_models_do_not_hide_a_context_problem(self) -> None:
        # A huge-window model that is inactive is not a model the request could have used.
        giant = make("giant", context_window=10_000_000, active=False)
        with pytest.raises(NoCandidates) as info:
            plan(
                mode="cost-optimized",
                model=None,
                candidates=[*CATALOG, giant],
                needs=needs(prompt_tokens=250_000),
            )
        assert info.value.context_exceeded

    def test_a_missing_capability_is_not_a_context_problem(self) -> None:
        # deepseek is too small, and the only model big enough lacks tools.
        no_tools = replace(SONNET, supports_tools=False)
        with pytest.raises(NoCandidates) as info:
            plan(
                mode="cost-optimized",
                model=None,
                candidates=[DEEPSEEK, no_tools],
                needs=needs(prompt_tokens=100_000, uses_tools=True),
            )
        assert not info.value.context_exceeded
        assert reasons(info.value.rejections) == {
            "deepseek-chat": RejectReason.CONTEXT_TOO_SMALL,
            "claude-sonnet-4-5-20250929": RejectReason.NO_TOOLS,
        }
        assert "no_tools" in str(info.value)

    def test_filters_alone_are_not_a_context_problem(self) -> None:
        with pytest.raises(NoCandidates) as info:
            plan(mode="cost-optimized", model=None, candidates=CATALOG, needs=needs(max_cost=D("0.0000001")))
        assert not info.value.context_exceeded

    def test_no_usable_model_at_all_is_not_a_context_problem(self) -> None:
        with pytest.raises(NoCandidates) as info:
            plan(mode="cost-optimized", model=None, candidates=[replace(GPT4O, active=False)], needs=needs())
        assert not info.value.context_exceeded

    def test_an_empty_catalog_raises_no_candidates(self) -> None:
        with pytest.raises(NoCandidates) as info:
            plan(mode="cost-optimized", model=None, candidates=[], needs=needs())
        assert info.value.rejections == ()
        assert not info.value.context_exceeded


class TestMaxTokensInManualMode:
    def test_max_tokens_above_the_named_models_max_output_is_refused_naming_the_limit(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan(mode="manual", model="gpt-4o-mini", candidates=CATALOG, needs=needs(max_tokens=127_000))
        assert info.value.code == "max_tokens_too_large"
        assert not info.value.context_exceeded
        assert str(info.value) == "max_tokens is 127000, above gpt-4o-mini's maximum output of 16384 tokens"

    def test_a_fallback_able_to_write_it_does_not_excuse_the_named_model(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan_manual("gpt-4o-mini", ["claude-sonnet-4.5"], CATALOG, needs(max_tokens=20_000))
        assert [u.model_id for u in info.value.unfit] == ["gpt-4o-mini"]

    def test_max_tokens_equal_to_the_max_output_is_accepted_and_sent_as_is(self) -> None:
        result = plan(mode="manual", model="gpt-4o-mini", candidates=CATALOG, needs=needs(max_tokens=16_384))
        assert ids(result.candidates) == ["gpt-4o-mini"]
        assert result.max_tokens == 16_384

    def test_max_tokens_that_does_not_fit_beside_the_prompt_is_refused_saying_so(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan_manual("gpt-4o", [], CATALOG, needs(prompt_tokens=120_000, max_tokens=10_000))
        assert info.value.code == "max_tokens_exceeds_context"
        assert not info.value.context_exceeded
        assert str(info.value) == (
            "prompt of 120000 tokens plus max_tokens 10000 exceed the context window 128000 of model gpt-4o"
        )

    def test_a_fallback_with_room_for_max_tokens_beside_the_prompt_takes_the_request(self) -> None:
        result = plan(
            mode="manual",
            model="gpt-4o",
            fallbacks=["claude-sonnet-4.5"],
            candidates=CATALOG,
            needs=needs(prompt_tokens=120_000, max_tokens=10_000),
        )
        assert ids(result.candidates) == ["claude-sonnet-4-5-20250929"]
        assert reasons(result.rejections) == {"gpt-4o": RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT}

    def test_a_fallback_that_writes_less_than_max_tokens_is_skipped_not_an_error(self) -> None:
        result = plan(
            mode="manual",
            model="claude-sonnet-4.5",
            fallbacks=["gpt-4o-mini", "gpt-4o"],
            candidates=CATALOG,
            needs=needs(max_tokens=20_000),
        )
        assert ids(result.candidates) == ["claude-sonnet-4-5-20250929"]
        assert reasons(result.rejections) == {
            "gpt-4o-mini": RejectReason.MAX_TOKENS_TOO_LARGE,
            "gpt-4o": RejectReason.MAX_TOKENS_TOO_LARGE,
        }

    def test_a_prompt_too_long_for_every_named_model_stays_context_exceeded_with_max_tokens(self) -> None:
        with pytest.raises(NoCandidates) as info:
            plan_manual("gpt-4o", ["deepseek-chat"], CATALOG, needs(prompt_tokens=300_000, max_tokens=1_000))
        assert not isinstance(info.value, MaxTokensUnfit)
        assert info.value.context_exceeded

    def test_when_the_prompt_outgrows_the_named_model_a_fallbacks_max_tokens_problem_is_named(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan_manual("deepseek-chat", ["gpt-4o"], CATALOG, needs(prompt_tokens=100_000, max_tokens=20_000))
        assert str(info.value) == "max_tokens is 20000, above gpt-4o's maximum output of 16384 tokens"


class TestMaxTokensInOptimizedModes:
    @pytest.mark.parametrize("mode", ["cost-optimized", "latency-optimized"])
    def test_models_that_write_less_than_max_tokens_are_filtered_out(self, mode: str) -> None:
        result = plan(mode=mode, model=None, candidates=CATALOG, needs=needs(max_tokens=20_000))
        assert ids(result.candidates) == ["claude-sonnet-4-5-20250929"]
        assert result.max_tokens == 20_000

    def test_auto_filters_them_too(self) -> None:
        result = plan(mode="manual", model="auto", candidates=CATALOG, needs=needs(max_tokens=20_000))
        assert ids(result.candidates) == ["claude-sonnet-4-5-20250929"]

    def test_when_none_writes_that_much_it_is_a_max_tokens_error_with_the_most_allowed(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan(mode="cost-optimized", model=None, candidates=CATALOG, needs=needs(max_tokens=127_000))
        assert info.value.code == "max_tokens_too_large"
        assert not info.value.context_exceeded
        assert str(info.value) == (
            "max_tokens is 127000, above the maximum output of every model that could serve the request; "
            "the most any of them takes beside this prompt is 64000 (claude-sonnet-4-5-20250929)"
        )

    def test_with_one_model_to_choose_from_the_error_is_about_that_model(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan(
                mode="cost-optimized",
                model=None,
                models=["gpt-4o-mini"],
                candidates=CATALOG,
                needs=needs(max_tokens=127_000),
            )
        assert str(info.value) == "max_tokens is 127000, above gpt-4o-mini's maximum output of 16384 tokens"

    def test_when_max_tokens_fits_beside_the_prompt_in_no_window_it_says_so(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan(
                mode="latency-optimized",
                model=None,
                models=["gpt-4o-mini", "gpt-4o"],
                candidates=CATALOG,
                needs=needs(prompt_tokens=120_000, max_tokens=10_000),
            )
        assert info.value.code == "max_tokens_exceeds_context"
        assert str(info.value) == (
            "prompt of 120000 tokens plus max_tokens 10000 exceed the context window of every model that could "
            "serve the request; the most any of them takes beside this prompt is 8000 (gpt-4o)"
        )

    def test_both_problems_at_once_are_still_max_tokens(self) -> None:
        # sonnet has the output but not the room beside 150k; the wide model has the room, not the output.
        wide = make("wide", context_window=1_000_000, max_output_tokens=8_192)
        with pytest.raises(MaxTokensUnfit) as info:
            plan(
                mode="cost-optimized",
                model=None,
                candidates=[*CATALOG, wide],
                needs=needs(prompt_tokens=150_000, max_tokens=60_000),
            )
        assert info.value.code == "max_tokens_too_large"
        assert reasons(info.value.rejections)["wide"] == RejectReason.MAX_TOKENS_TOO_LARGE
        assert str(info.value) == (
            "max_tokens is 60000, more than any model that could serve the request takes beside a prompt of "
            "150000 tokens; the most any of them takes beside this prompt is 50000 (claude-sonnet-4-5-20250929)"
        )

    def test_a_model_that_fails_another_check_too_is_no_reason_to_blame_max_tokens(self) -> None:
        no_tools = replace(MINI, supports_tools=False)
        with pytest.raises(NoCandidates) as info:
            plan(
                mode="cost-optimized",
                model=None,
                candidates=[no_tools],
                needs=needs(max_tokens=20_000, uses_tools=True),
            )
        assert not isinstance(info.value, MaxTokensUnfit)
        assert not info.value.context_exceeded

    def test_a_prompt_too_long_for_every_window_stays_context_exceeded_with_max_tokens(self) -> None:
        with pytest.raises(NoCandidates) as info:
            plan(
                mode="cost-optimized",
                model=None,
                candidates=CATALOG,
                needs=needs(prompt_tokens=250_000, max_tokens=1_000),
            )
        assert not isinstance(info.value, MaxTokensUnfit)
        assert info.value.context_exceeded

    def test_the_message_names_max_tokens_as_the_door_spells_it(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan(mode="manual", model="gpt-4o-mini", candidates=CATALOG, needs=needs(max_tokens=127_000))
        assert info.value.describe("max_output_tokens") == (
            "max_output_tokens is 127000, above gpt-4o-mini's maximum output of 16384 tokens"
        )


class TestClampedMaxTokens:
    def test_max_tokens_above_the_named_models_max_output_is_lowered_to_it(self) -> None:
        result = plan(
            mode="manual",
            model="gpt-4o-mini",
            candidates=CATALOG,
            needs=needs(max_tokens=127_000, clamp_max_tokens=True),
        )
        assert ids(result.candidates) == ["gpt-4o-mini"]
        assert result.max_tokens == 16_384

    def test_max_tokens_within_the_max_output_is_left_alone(self) -> None:
        result = plan(
            mode="manual",
            model="gpt-4o",
            candidates=CATALOG,
            needs=needs(max_tokens=1_000, clamp_max_tokens=True),
        )
        assert result.max_tokens == 1_000

    def test_fallbacks_that_write_less_than_the_clamped_value_are_dropped(self) -> None:
        result = plan(
            mode="manual",
            model="claude-sonnet-4.5",
            fallbacks=["gpt-4o-mini", "claude-sonnet-4-5-20250929", "deepseek-chat"],
            candidates=CATALOG,
            needs=needs(max_tokens=100_000, clamp_max_tokens=True),
        )
        assert result.max_tokens == 64_000
        assert ids(result.candidates) == ["claude-sonnet-4-5-20250929"]
        assert reasons(result.rejections) == {
            "gpt-4o-mini": RejectReason.MAX_TOKENS_TOO_LARGE,
            "deepseek-chat": RejectReason.MAX_TOKENS_TOO_LARGE,
        }

    def test_fallbacks_that_write_as_much_are_kept(self) -> None:
        result = plan(
            mode="manual",
            model="gpt-4o-mini",
            fallbacks=["gpt-4o"],
            candidates=CATALOG,
            needs=needs(max_tokens=127_000, clamp_max_tokens=True),
        )
        assert ids(result.candidates) == ["gpt-4o-mini", "gpt-4o"]
        assert result.max_tokens == 16_384

    def test_the_clamped_value_must_still_fit_beside_the_prompt(self) -> None:
        with pytest.raises(MaxTokensUnfit) as info:
            plan(
                mode="manual",
                model="gpt-4o-mini",
                candidates=CATALOG,
                needs=needs(prompt_tokens=120_000, max_tokens=127_000, clamp_max_tokens=True),
            )
        assert info.value.code == "max_tokens_exceeds_context"

    def test_optimized_modes_clamp_to_the_first_model_and_drop_those_that_write_less(self) -> None:
        result = plan(
            mode="cost-optimized",
            model=None,
            candidates=CATALOG,
            needs=needs(max_tokens=127_000, clamp_max_tokens=True),
        )
        assert result.max_tokens == 16_384
        assert ids(result.candidates) == ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5-20250929"]
        assert reasons(result.rejections) == {"deepseek-chat": RejectReason.MAX_TOKENS_TOO_LARGE}
