"""Fault-injection rules set through `POST /__control`: matched per model, stacked, consumed per request."""

from dataclasses import dataclass, field
from typing import Any

# Every setting a rule may carry, with the JSON types it accepts.
_NUMBER = (int, float)
RULE_FIELDS: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "retry_after": _NUMBER,
    "delay_ms": _NUMBER,
    "chunk_delay_ms": _NUMBER,
    # While waiting between chunks, an SSE comment (`: keep-alive`) this often, as DeepSeek sends under load:
    # the line stays busy, so only a relay's own idle timeout notices that no content is coming.
    "keepalive_ms": _NUMBER,
    "disconnect_after_chunks": (int,),
    "chunks": (int,),
    "cached_tokens": (int,),
    "cache_write_tokens": (int,),
    "cache_write_1h_tokens": (int,),
    "reasoning_tokens": (int,),
    "answer": (str,),
    "message": (str,),
    "error_type": (str,),
    "error_code": (str,),
    # How the fake counts prompt tokens: "chars" (4 characters a token, the default) or "words" (10 + words),
    # so tests can check that budget holds bound a vendor's count whatever its tokenizer.
    "prompt_counting": (str,),
}


@dataclass(frozen=True, slots=True)
class Fault:
    """What the rules say about one request; the defaults mean "answer normally"."""

    status: int = 200
    retry_after: float | None = None
    delay_ms: float = 0
    chunk_delay_ms: float = 0
    keepalive_ms: float = 0
    disconnect_after_chunks: int | None = None
    chunks: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the 1-hour-TTL part of cache_write_tokens (Anthropic)
    reasoning_tokens: int | None = None
    answer: str | None = None
    message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    prompt_counting: str = "chars"

    @property
    def is_error(self) -> bool:
        return self.status >= 400


NO_FAULT = Fault()


class RuleError(ValueError):
    """A control request that does not describe a valid rule."""


@dataclass(slots=True)
class Rule:
    model: str  # a model id, or "*" for every model
    settings: dict[str, Any] = field(default_factory=dict)
    times: int | None = None  # None: forever
    after: int = 0  # let this many matching requests through untouched first (fail the 2nd chunk, say)

    @property
    def is_error(self) -> bool:
        return self.settings.get("status", 200) >= 400

    def matches(self, model: str) -> bool:
        return self.model == "*" or self.model == model

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, **self.settings, "times": self.times, "after": self.after}


def parse_rule(raw: Any) -> Rule:
    """Validate one rule from the control endpoint's JSON, refusing unknown keys so typos fail loudly."""
    if not isinstance(raw, dict):
        raise RuleError("a rule must be a JSON object")
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise RuleError("'model' is required (a model id, or '*')")
    unknown = sorted(set(raw) - set(RULE_FIELDS) - {"model", "times", "after"})
    if unknown:
        raise RuleError(f"unknown rule keys: {', '.join(unknown)}")
    times = raw.get("times")
    if times is not None and (not _is(times, (int,)) or times < 1):
        raise RuleError("'times' must be a positive integer (or absent for forever)")
    after = raw.get("after", 0)
    if not _is(after, (int,)) or after < 0:
        raise RuleError("'after' must be a non-negative integer")
    settings: dict[str, Any] = {}
    for key, types in RULE_FIELDS.items():
        if key not in raw:
            continue
        value = raw[key]
        if not _is(value, types):
            raise RuleError(f"'{key}' has the wrong type")
        if types != (str,) and value < 0:
            raise RuleError(f"'{key}' must not be negative")
        settings[key] = value
    if "status" in settings and not 100 <= settings["status"] <= 599:
        raise RuleError("'status' must be an HTTP status code")
    if settings.get("chunks") == 0:
        raise RuleError("'chunks' must be at least 1")
    if settings.get("prompt_counting", "chars") not in ("chars", "words"):
        raise RuleError("'prompt_counting' must be 'chars' or 'words'")
    return Rule(model=model, settings=settings, times=times, after=after)


def _is(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


class RuleBook:
    """The active rules, in the order they were added.

    For each request every matching rule that is not an error fires, plus the *first* matching error rule
    (status >= 400), so `429 x1` then `500 x1` gives a 429, then a 500, then a success. The error rule's
    settings win over the others; among the others, later rules win. A fired rule uses up one of its `times`;
    a rule with `after: n` lets its first n matching requests pass without firing.
    """

    def __init__(self) -> None:
        self._rules: list[Rule] = []

    def add(self, rule: Rule) -> None:
        self._rules.append(rule)

    def clear(self) -> None:
        self._rules.clear()

    def as_list(self) -> list[dict[str, Any]]:
        return [rule.as_dict() for rule in self._rules]

    def fire(self, model: str) -> Fault:
        if not self._rules:
            return NO_FAULT
        merged: dict[str, Any] = {}
        error_rule: Rule | None = None
        for rule in list(self._rules):
            if not rule.matches(model):
                continue
            if rule.after:
                rule.after -= 1
                continue
            if rule.is_error:
                if error_rule is not None:
                    continue
                error_rule = rule
            else:
                merged.update(rule.settings)
            self._use(rule)
        if error_rule is not None:
            merged.update(error_rule.settings)
        return Fault(**merged) if merged else NO_FAULT

    def _use(self, rule: Rule) -> None:
        if rule.times is None:
            return
        rule.times -= 1
        if rule.times <= 0:
            self._rules.remove(rule)
