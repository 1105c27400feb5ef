"""The engine's vocabulary: modes, candidates, needs, rejections, plans and the errors planning raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from providers.pricing import Rates

MODE_MANUAL = "manual"
MODE_COST = "cost-optimized"
MODE_LATENCY = "latency-optimized"
MODES = (MODE_MANUAL, MODE_COST, MODE_LATENCY)
AUTO_MODEL = "auto"
DEFAULT_EXPECTED_OUTPUT_TOKENS = 500


class RejectReason(StrEnum):
    """Why a candidate was dropped. The first failing check is the one recorded."""

    INACTIVE = "inactive"
    PROVIDER_INACTIVE = "provider_inactive"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    NO_PRICE = "no_price"
    DEPRECATED = "deprecated"
    PROVIDER_FILTERED = "provider_filtered"
    CONTEXT_TOO_SMALL = "context_too_small"  # the prompt (or, without max_tokens, prompt + expected output)
    MAX_TOKENS_TOO_LARGE = "max_tokens_too_large"  # above the model's max output
    MAX_TOKENS_EXCEEDS_CONTEXT = "max_tokens_exceeds_context"  # the prompt fits, not max_tokens beside it
    NO_TOOLS = "no_tools"
    NO_VISION = "no_vision"
    NO_JSON = "no_json"
    OVER_MAX_COST = "over_max_cost"
    IN_COOLDOWN = "in_cooldown"


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One routable model as the catalog and health tracking see it right now."""

    model_id: str
    provider: str
    context_window: int
    max_output_tokens: int
    # None when the catalog has no price in force: such a model is never routed to, since it can't be charged.
    rates: Rates | None
    aliases: tuple[str, ...] = ()
    supports_tools: bool = False
    supports_vision: bool = False
    supports_json: bool = False
    active: bool = True
    provider_active: bool = True
    provider_configured: bool = True
    deprecation_date: date | None = None
    p50_latency_ms: float | None = None
    in_cooldown: bool = False
    kind: str = "chat"  # "chat" | "embedding": a request is only ever routed to models of its own kind

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.model_id)


@dataclass(frozen=True, kw_only=True)
class Needs:
    """What a request requires of a model, with the token estimates used for fit and cost."""

    prompt_tokens: int
    today: date
    expected_output_tokens: int = DEFAULT_EXPECTED_OUTPUT_TOKENS
    max_tokens: int | None = None
    uses_tools: bool = False
    uses_images: bool = False
    uses_json: bool = False
    provider_filter: tuple[str, ...] | None = None
    max_cost: Decimal | None = None
    # A door whose clients ask for more than models write (Claude Code on /v1/messages) may have max_tokens
    # lowered to the model's max output instead of refused; the Plan then says what is sent.
    clamp_max_tokens: bool = False
    kind: str = "chat"
    # What the context window must hold when that is not the whole prompt: embeddings fit each input on its
    # own, so this is the longest input while prompt_tokens (what cost is estimated on) is their sum.
    fit_tokens: int | None = None


@dataclass(frozen=True)
class Rejection:
    model_id: str
    reason: RejectReason
    provider: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    estimated_cost: Decimal
    reason: str


@dataclass(frozen=True)
class Plan:
    """The ordered models to try, what was dropped and why, and how many models were looked at."""

    mode: str
    ranked: tuple[Ranked, ...]
    rejections: tuple[Rejection, ...] = ()
    considered: int = 0
    # What every attempt is sent: the request's max_tokens or, clamped, at most the first model's max output.
    max_tokens: int | None = None

    @property
    def candidates(self) -> list[Candidate]:
        return [r.candidate for r in self.ranked]


class RoutingError(Exception):
    pass


class ModelNotFound(RoutingError):
    """A requested name matches no model, or one that can't be used (inactive, unconfigured, unpriced)."""

    def __init__(self, name: str, reason: str = "unknown") -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"Model '{name}' not found or inactive")


class WrongKind(ModelNotFound):
    """A requested name is a model of the other kind: an embedding model asked to chat, or the reverse."""

    def __init__(self, name: str, kind: str, wanted: str) -> None:
        super().__init__(name, "wrong_kind")
        self.kind = kind
        self.wanted = wanted


class NoCandidates(RoutingError):
    """Nothing fits the request. context_exceeded means the prompt (without max_tokens: plus the expected
    output) is longer than the context window of every model the request could otherwise use: the API's 413
    context_length_exceeded, as opposed to a 400 for capabilities, filters, max_cost or max_tokens."""

    def __init__(
        self, rejections: Sequence[Rejection], *, context_exceeded: bool, message: str | None = None
    ) -> None:
        self.rejections = tuple(rejections)
        self.context_exceeded = context_exceeded
        if message is None and context_exceeded:
            message = "The prompt is longer than the context window of every candidate model"
        elif message is None:
            reasons = sorted({r.reason.value for r in self.rejections})
            message = "No model fits the request" + (f" ({', '.join(reasons)})" if reasons else "")
        super().__init__(message)


@dataclass(frozen=True)
class Unfit:
    """A model that would serve the request but for max_tokens, and the most it takes beside the prompt."""

    model_id: str
    provider: str
    reason: RejectReason  # MAX_TOKENS_TOO_LARGE or MAX_TOKENS_EXCEEDS_CONTEXT
    max_output_tokens: int
    context_window: int
    allowed: int


class MaxTokensUnfit(NoCandidates):
    """max_tokens is what stops the request: above the model's max output (code max_tokens_too_large) or too
    large to fit beside the prompt in its context window (max_tokens_exceeds_context). A 400 naming
    max_tokens, never the 413 of a prompt that alone is too long. `unfit` holds the models a smaller
    max_tokens would make usable; with one, the message is about that model."""

    def __init__(
        self, rejections: Sequence[Rejection], *, max_tokens: int, prompt_tokens: int, unfit: Sequence[Unfit]
    ) -> None:
        assert unfit
        self.max_tokens = max_tokens
        self.prompt_tokens = prompt_tokens
        self.unfit = tuple(unfit)
        kinds = {u.reason for u in self.unfit}
        self.code = (
            RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT.value
            if kinds == {RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT}
            else RejectReason.MAX_TOKENS_TOO_LARGE.value
        )
        super().__init__(rejections, context_exceeded=False, message=self.describe("max_tokens"))

    def describe(self, field: str) -> str:
        """The message, naming max_tokens as the client's door spells it (max_output_tokens, …)."""
        m, p = self.max_tokens, self.prompt_tokens
        if len(self.unfit) == 1:
            u = self.unfit[0]
            if u.reason is RejectReason.MAX_TOKENS_TOO_LARGE:
                return f"{field} is {m}, above {u.model_id}'s maximum output of {u.max_output_tokens} tokens"
            return (
                f"prompt of {p} tokens plus {field} {m} exceed the context window {u.context_window} "
                f"of model {u.model_id}"
            )
        best = min(self.unfit, key=lambda u: (-u.allowed, u.model_id, u.provider))
        hint = f"; the most any of them takes beside this prompt is {best.allowed} ({best.model_id})"
        kinds = {u.reason for u in self.unfit}
        if kinds == {RejectReason.MAX_TOKENS_TOO_LARGE}:
            return (
                f"{field} is {m}, above the maximum output of every model that could serve the request{hint}"
            )
        if kinds == {RejectReason.MAX_TOKENS_EXCEEDS_CONTEXT}:
            return (
                f"prompt of {p} tokens plus {field} {m} exceed the context window of every model that could "
                f"serve the request{hint}"
            )
        return (
            f"{field} is {m}, more than any model that could serve the request takes beside a prompt "
            f"of {p} tokens{hint}"
        )
