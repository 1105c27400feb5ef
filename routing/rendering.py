"""Fast JSON for the hot path: Decimals printed positionally (0.00000825), never through a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from providers.pricing import format_usd


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format_usd(value))
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_default)
