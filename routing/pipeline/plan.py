"""Planning: the models to try, in order, and the prompt estimate each one is judged and held on."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.utils import timezone

from config.api_errors import InvalidRequest, PayloadTooLarge
from providers.bounds import inputs_tokens_bound, prompt_tokens_bound
from providers.catalog import Catalog, CatalogModel, acatalog_get, wrong_kind_message
from providers.token_encodings import encodings_ready
from providers.tokens import count_input_tokens, count_message_tokens, encodings_for
from routing import engine, health
from routing.pipeline.run import CompletionRun
from routing.pipeline.types import Caller, CompletionInput

# Approximate token counts can run low; reserve with headroom so the actual cost stays inside the hold.
APPROX_PROMPT_MARGIN = Decimal("1.15")
# A door sets door_params[CLAMP_MAX_TOKENS] = True to have a max_tokens above the model's max output lowered
# to it rather than refused (ingress-wire-formats §2.2: /v1/messages, where Claude Code asks for a lot).
CLAMP_MAX_TOKENS = "clamp_max_tokens"
# How each door spells max_tokens, for the error that names it.
MAX_TOKENS_FIELD = {"responses": "max_output_tokens"}


# The candidates last made, with what they were made of: a request finds them made unless the catalog (frozen, a new
# object on each load), a cooldown or a latency sample changed since. Making one frozen dataclass per catalog
# model on every request was ~2% of its CPU.
_made: tuple[Catalog, frozenset[str], tuple[float | None, ...], tuple[engine.Candidate, ...]] | None = None


def _candidates(
    catalog: Catalog, cooldowns: set[str], latencies: dict[str, float | None]
) -> tuple[engine.Candidate, ...]:
    global _made
    cooling = frozenset(cooldowns)
    samples = tuple(latencies.get(m.model_id) for m in catalog.models)
    made = _made
    if made is not None and made[0] is catalog and made[1] == cooling and made[2] == samples:
        return made[3]
    built = tuple(
        engine.Candidate(
            model_id=m.model_id,
            provider=m.provider,
            context_window=m.context_window,
            max_output_tokens=m.max_output_tokens,
            rates=m.rates,
            aliases=m.aliases,
            supports_tools=m.supports_tools,
            supports_vision=m.supports_vision,
            supports_json=m.supports_json,
            active=m.active,
            provider_active=m.provider_active,
            provider_configured=m.provider_configured,
            deprecation_date=m.deprecation_date,
            p50_latency_ms=p50,
            in_cooldown=m.provider in cooling,
            kind=m.kind,
        )
        for m, p50 in zip(catalog.models, samples, strict=True)
    )
    _made = (catalog, cooling, samples, built)
    return built


class PromptCounts:
    """Per model of the request's kind: (prompt tokens, what its context window must hold when that is not
    all of them), counted when first asked for, once per tokenizer (tokenizers differ by vendor).

    Lazy, because most requests need one model's count: a manual request is judged on its model's own
    tokenizer and a fallback is counted only if it is tried. Counting every model up front encoded the
    prompt once per catalog model (a long prompt paid that a dozen times) and loaded every vocabulary.
    """

    def __init__(self, inp: CompletionInput, catalog: Catalog) -> None:
        self._inp = inp
        # Other kinds are never routed to, so never counted: a chat request pays no embedding tokenizer.
        self._models = {m.model_id: m for m in catalog.models if m.kind == inp.kind}
        self._by_method: dict[tuple[str, str], tuple[int, int | None]] = {}
        self._bases: dict[tuple[str, str], int] = {}

    def encodings(self, model_ids: Iterable[str] | None = None) -> set[str]:
        """The encodings counting these models (default: every model of the request's kind) reads with."""
        models = (
            self._models.values() if model_ids is None else [self._models[i] for i in model_ids if i in self]
        )
        return encodings_for((m.model_id, m.provider) for m in models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def counts(self, model_id: str) -> tuple[int, int | None]:
        model = self._models[model_id]
        key = (model.provider, model.model_id if model.provider == "openai" else "")
        if key not in self._by_method:
            self._by_method[key] = self._count(model)
        return self._by_method[key]

    def __getitem__(self, model_id: str) -> int:
        """The prompt tokens of one model of the request's kind (KeyError for any other)."""
        return self.counts(model_id)[0]

    def get(self, model_id: str, default: int = 0) -> int:
        """The prompt tokens of one model (default when it is not of the request's kind)."""
        return self.counts(model_id)[0] if model_id in self._models else default

    def largest(self) -> tuple[int, int | None]:
        """What optimized modes judge every candidate on: the largest count of any tokenizer."""
        counted = [self.counts(model_id) for model_id in self._models]
        prompt = max((p for p, _ in counted), default=0)
        fits = [f for _, f in counted if f is not None]
        return prompt, max(fits) if fits else None

    def _count(self, model: CatalogModel) -> tuple[int, int | None]:
        """Embeddings fit each input on its own, and are counted plainly, margin or not: their holds are
        sized by the UTF-8 bound, and Gemini's estimate is also what they are charged at."""
        inp = self._inp
        if inp.embedding is not None:
            inputs = count_input_tokens(inp.embedding.inputs, model.model_id, model.provider)
            return inputs.total, inputs.longest
        counted = count_message_tokens(
            inp.messages, model.model_id, model.provider, tools=inp.tools, bases=self._bases
        )
        if counted.is_exact_tokenizer:
            return counted.tokens, None
        return int(Decimal(counted.tokens) * APPROX_PROMPT_MARGIN) + 1, None


def _prompt_bound(inp: CompletionInput) -> int:
    if inp.embedding is not None:
        return inputs_tokens_bound(inp.embedding.inputs)
    native = inp.native.body if inp.native is not None else None
    return prompt_tokens_bound(inp.messages, tools=inp.tools, native=native)


async def completion_plan(*, caller: Caller, inp: CompletionInput, request_id: str) -> CompletionRun:
    """Chooses the models to try, in order; raises 400 (unknown model, nothing fits, max_tokens beyond what
    the model writes or its context holds beside the prompt) or 413 (the prompt alone too long)."""
    catalog = await acatalog_get()
    providers = sorted({m.provider for m in catalog.models})
    # `model: auto` is cost-optimized in manual mode's clothing: it skips providers in cooldown too.
    optimized = inp.mode != engine.MODE_MANUAL or inp.model == engine.AUTO_MODEL
    cooldowns = await health.cooldowns_get(providers) if optimized else set()
    latencies = await health.latencies_get([m.model_id for m in catalog.models])
    counts = PromptCounts(inp, catalog)
    chosen = None
    if inp.mode == engine.MODE_MANUAL and inp.model and inp.model != engine.AUTO_MODEL:
        chosen = catalog.by_name(inp.model)
    # Manual mode judges context on the requested model's own tokenizer.
    # Each count below, and each attempt's later, reads a vocabulary built off the event loop (encodings_ready).
    if chosen is not None and chosen.model_id in counts:
        await encodings_ready(counts.encodings([chosen.model_id]))
        prompt, fit = counts.counts(chosen.model_id)
    else:
        await encodings_ready(counts.encodings())
        prompt, fit = counts.largest()
    needs = engine.Needs(
        prompt_tokens=prompt,
        fit_tokens=fit,
        kind=inp.kind,
        today=timezone.now().date(),
        expected_output_tokens=inp.expected_output_tokens,
        max_tokens=inp.max_tokens,
        uses_tools=bool(inp.tools),
        uses_images=inp.uses_images(),
        uses_json=inp.uses_json(),
        provider_filter=tuple(inp.provider_filter) if inp.provider_filter else None,
        max_cost=inp.max_cost,
        clamp_max_tokens=inp.door_params.get(CLAMP_MAX_TOKENS) is True,
    )
    try:
        plan = engine.plan(
            mode=inp.mode,
            model=inp.model,
            candidates=_candidates(catalog, cooldowns, latencies),
            needs=needs,
            models=inp.models,
            fallbacks=inp.fallbacks,
        )
    except engine.MaxTokensUnfit as exc:
        field = MAX_TOKENS_FIELD.get(inp.door, "max_tokens")
        raise InvalidRequest(exc.describe(field), param=field, code=exc.code) from exc
    except engine.WrongKind as exc:
        raise InvalidRequest(
            wrong_kind_message(exc.name, exc.kind, exc.wanted), param="model", code="model_not_found"
        ) from exc
    except engine.ModelNotFound as exc:
        raise InvalidRequest(
            f"Model '{exc.name}' not found or inactive", param="model", code="model_not_found"
        ) from exc
    except engine.NoCandidates as exc:
        if exc.context_exceeded:
            param = "input" if inp.embedding is not None else "messages"
            raise PayloadTooLarge(str(exc), param=param, code="context_length_exceeded") from exc
        raise InvalidRequest(str(exc), param="model", code="no_model_fits") from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="model", code="invalid_value") from exc
    await encodings_ready(counts.encodings(c.model_id for c in plan.candidates))  # the fallbacks' too
    return CompletionRun(
        caller=caller,
        inp=inp,
        request_id=request_id,
        catalog=catalog,
        plan=plan,
        prompt_tokens=counts,
        prompt_bound=_prompt_bound(inp),
        # Clamped, what every attempt is sent and held on is less than the client asked for.
        max_tokens_override=plan.max_tokens if plan.max_tokens != inp.max_tokens else None,
    )
