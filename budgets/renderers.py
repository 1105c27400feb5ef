"""JSON for the budget API: Decimals written as plain JSON numbers (0.00000825), never through a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer


def decimal_literal(value: Decimal) -> str:
    """Positional notation, trailing zeros dropped, no exponent: "0.00000825", "12.5", "0"."""
    if not value.is_finite():
        raise TypeError(f"cannot render {value} as a JSON number")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_literal(value).encode())
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


class MoneyJSONRenderer(JSONRenderer):
    """DRF's JSONRenderer turns Decimal into float (8.25e-06); this one keeps the exact decimal digits."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default)
