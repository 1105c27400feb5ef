"""Token and cost estimates for a prompt across catalog models, cheapest first (POST /v1/tokens/estimate)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from providers.catalog import Catalog, CatalogModel, catalog_get, wrong_kind_message
from providers.pricing import cost_of
from providers.token_encodings import encoding_name_for
from providers.tokens import count_input_tokens, count_message_tokens

DEFAULT_EXPECTED_OUTPUT_TOKENS = 500


class ModelNotFound(Exception):
    """A requested name matches no active, priced model (or one of the other kind: see message)."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(message or f"Model '{name}' not found or inactive")


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str
    provider: str
    prompt_tokens: int
    expected_output_tokens: int
    input_cost_usd: Decimal
    output_cost_usd: Decimal
    total_cost_usd: Decimal
    fits_context: bool
    method: str


def _estimable(model: CatalogModel) -> bool:
    return model.active and model.provider_active and model.rates is not None


def _resolve(catalog: Catalog, names: Sequence[str], kind: str) -> list[CatalogModel]:
    chosen: list[CatalogModel] = []
    for name in names:
        model = catalog.by_name(name)
        if model is None or not _estimable(model):
            raise ModelNotFound(name)
        if model.kind != kind:
            raise ModelNotFound(name, wrong_kind_message(name, model.kind, kind))
        if model not in chosen:
            chosen.append(model)
    return chosen


def _output_tokens(model: CatalogModel, expected: int, max_tokens: int | None) -> int:
    # As the router estimates: the expected output, capped by the request's max_tokens and the model's cap.
    tokens = expected if max_tokens is None else min(expected, max_tokens)
    return max(0, min(tokens, model.max_output_tokens))


def estimate_list(
    *,
    messages: Sequence[Mapping[str, Any]] | None = None,
    inputs: Sequence[str] | Sequence[Sequence[int]] | None = None,
    model: str | None = None,
    models: Sequence[str] | None = None,
    expected_output_tokens: int = DEFAULT_EXPECTED_OUTPUT_TOKENS,
    max_tokens: int | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> list[Estimate]:
    """Estimates for `model`, for each of `models`, or (neither given) for every active priced model of the
    kind asked about: chat models for `messages`, embedding models for embeddings `inputs` (whose tokens are
    counted per input with no chat framing, fit each input on its own and write no output).

    Prompt tokens come from providers.tokens (the model's own tiktoken encoding for OpenAI models, else the
    labelled approximation), costs from the price in force with no provider-side prompt caching assumed.
    fits_context: prompt plus output room (max_tokens when given, else expected_output_tokens) fits the
    context window. Sorted by total cost, then model id. Raises ModelNotFound for an unknown, inactive or
    unpriced name.
    """
    kind = "embedding" if inputs is not None else "chat"
    catalog = catalog_get()
    if model is not None:
        chosen = _resolve(catalog, [model], kind)
    elif models:
        chosen = _resolve(catalog, models, kind)
    else:
        chosen = [m for m in catalog.models if _estimable(m) and m.kind == kind]
    if inputs is not None:
        return _sorted([_input_estimate(entry, inputs) for entry in chosen])

    counted: dict[tuple[str, str | None], tuple[int, str]] = {}
    estimates: list[Estimate] = []
    for entry in chosen:
        assert entry.rates is not None
        # One count per tokenizer: every OpenAI model on an encoding, every other vendor on its ratio.
        method_key = (entry.provider, encoding_name_for(entry.model_id, entry.provider))
        if method_key not in counted:
            count = count_message_tokens(messages or [], entry.model_id, entry.provider, tools=tools)
            counted[method_key] = (count.tokens, count.method)
        prompt_tokens, method = counted[method_key]
        output_tokens = _output_tokens(entry, expected_output_tokens, max_tokens)
        cost = cost_of(entry.rates, prompt_tokens, output_tokens)
        room = max_tokens if max_tokens is not None else expected_output_tokens
        estimates.append(
            Estimate(
                model=entry.model_id,
                provider=entry.provider,
                prompt_tokens=prompt_tokens,
                expected_output_tokens=output_tokens,
                input_cost_usd=cost.input_cost,
                output_cost_usd=cost.output_cost,
                total_cost_usd=cost.total,
                fits_context=prompt_tokens + room <= entry.context_window,
                method=method,
            )
        )
    return _sorted(estimates)


def _sorted(estimates: list[Estimate]) -> list[Estimate]:
    return sorted(estimates, key=lambda e: (e.total_cost_usd, e.model))


def _input_estimate(entry: CatalogModel, inputs: Sequence[str] | Sequence[Sequence[int]]) -> Estimate:
    assert entry.rates is not None
    count = count_input_tokens(inputs, entry.model_id, entry.provider)
    cost = cost_of(entry.rates, count.total, 0)
    return Estimate(
        model=entry.model_id,
        provider=entry.provider,
        prompt_tokens=count.total,
        expected_output_tokens=0,
        input_cost_usd=cost.input_cost,
        output_cost_usd=cost.output_cost,
        total_cost_usd=cost.total,
        fits_context=count.longest <= entry.context_window,
        method=count.method,
    )
