"""JSON for the analytics API: Decimals as plain numbers with no float noise (0.00000825, not 8.25e-06)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer


def decimal_literal(value: Decimal) -> str:
    """The shortest exact positional form: trailing zeros stripped, never an exponent."""
    if not value.is_finite():
        raise TypeError(f"cannot render {value} as a JSON number")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_literal(value).encode())
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


class DecimalJSONRenderer(JSONRenderer):
    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
