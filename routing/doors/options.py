"""Router options as X-Router-* headers, the same on every door (a body field wins where a door has one)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from config.api_errors import InvalidRequest
from routing import engine
from routing.pipeline.types import CompletionInput

PROVIDERS = ("openai", "anthropic", "google", "deepseek")
MAX_LIST = 100


def _ids(header: str, value: str) -> list[str]:
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids or len(ids) > MAX_LIST or any(len(i) > 200 for i in ids):
        raise InvalidRequest(f"{header} must list 1 to {MAX_LIST} comma-separated ids", param=header)
    return ids


def _choice(header: str, value: str, choices: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in choices:
        raise InvalidRequest(f"{header} must be one of {', '.join(choices)}", param=header)
    return value


def _decimal(header: str, value: str) -> Decimal:
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0:
        raise InvalidRequest(f"{header} must be a non-negative number", param=header)
    return amount


def apply_router_headers(inp: CompletionInput, headers: Mapping[str, str], body: Mapping[str, Any]) -> None:
    """Sets the options sent as headers; a field the body itself carries keeps the body's value."""

    def wanted(header: str, field: str) -> str | None:
        value = headers.get(header)
        return value if value is not None and field not in body else None

    if (value := wanted("X-Router-Mode", "mode")) is not None:
        inp.mode = _choice("X-Router-Mode", value, engine.MODES)
    if (value := wanted("X-Router-Models", "models")) is not None:
        inp.models = _ids("X-Router-Models", value)
    if (value := wanted("X-Router-Fallbacks", "fallbacks")) is not None:
        inp.fallbacks = _ids("X-Router-Fallbacks", value)[:10]
    if (value := wanted("X-Router-Provider-Filter", "provider_filter")) is not None:
        inp.provider_filter = [_choice("X-Router-Provider-Filter", p, PROVIDERS) for p in value.split(",")]
    if (value := wanted("X-Router-Max-Cost", "max_cost")) is not None:
        inp.max_cost = _decimal("X-Router-Max-Cost", value)
    if (value := wanted("X-Router-Budget-Policy", "budget_policy")) is not None:
        inp.budget_policy = _choice("X-Router-Budget-Policy", value, ("refuse", "fit"))
    cache = wanted("X-Router-Cache", "cache")
    if cache is not None and _choice("X-Router-Cache", cache, ("on", "off")) == "off":
        inp.cache_read = inp.cache_write = False
