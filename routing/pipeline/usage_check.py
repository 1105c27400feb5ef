"""Provider usage is checked, never trusted blindly: counts that can't be true are bounded and flagged.

A negative count, or one beyond what the request allowed (a completion longer than the max_tokens we sent
or the model's max output, a prompt longer than the context window, cached or written tokens beyond the
prompt, reasoning beyond the completion), is recorded as an anomaly on the call's row and charged at its
bound, so the charge never exceeds what the request could have cost and the row can always be written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from providers.adapters.base import Usage
from routing import metrics

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CheckedUsage:
    usage: Usage
    anomalies: list[str] = field(default_factory=list)


def _bounded(name: str, value: object, high: int, anomalies: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        anomalies.append(f"{name}={value!r}: not a count; charged as 0")
        return 0
    if value > high:
        anomalies.append(f"{name}={value}: above the possible {high}; charged as {high}")
        return high
    return value


def usage_checked(usage: Usage, *, max_prompt: int, max_output: int) -> CheckedUsage:
    anomalies: list[str] = []
    prompt = _bounded("prompt_tokens", usage.prompt_tokens, max_prompt, anomalies)
    completion = _bounded("completion_tokens", usage.completion_tokens, max_output, anomalies)
    cached = _bounded("cached_tokens", usage.cached_tokens, prompt, anomalies)
    written = _bounded("cache_write_tokens", usage.cache_write_tokens, prompt - cached, anomalies)
    written_1h = _bounded("cache_write_1h_tokens", usage.cache_write_1h_tokens, written, anomalies)
    reasoning = _bounded("reasoning_tokens", usage.reasoning_tokens, completion, anomalies)
    if not anomalies:
        return CheckedUsage(usage)
    checked = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        cache_write_tokens=written,
        cache_write_1h_tokens=written_1h,
    )
    return CheckedUsage(checked, anomalies)


def anomalies_observed(*, request_id: str, provider: str, model: str, anomalies: list[str]) -> None:
    for anomaly in anomalies:
        metrics.USAGE_ANOMALIES.labels(provider, anomaly.split("=", 1)[0]).inc()
    logger.warning(
        "provider usage out of bounds: charged at the bound",
        extra={"request_id": request_id, "provider": provider, "model": model, "anomalies": anomalies},
    )
