"""JSON for the catalog's API: Decimals as plain JSON numbers (0.00000825), never through a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer

from providers.pricing import format_usd


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A Fragment is written verbatim: the exact digits as a JSON number, not a string or a float.
        return orjson.Fragment(format_usd(value))
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


class DecimalJSONRenderer(JSONRenderer):
    """DRF's JSONRenderer turns a Decimal into a float (8.25e-06); this one keeps the exact decimal digits."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default)
