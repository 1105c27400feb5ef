"""Numbers for people: $0.0042, 1,234 ms, 12.5k tokens, 96.3%."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()

DASH = "—"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _grouped(value: Decimal, places: int) -> str:
    quantized = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{quantized:,.{places}f}"


@register.filter
def usd(value: Any) -> str:
    """The money format of every summed or averaged amount (totals, averages, spend, savings): two decimals from a
    dollar up ($1.00, $1,234.50); below, four significant digits at most and at least two decimals ($0.60, $0.075,
    $0.008273, $0.0000077), so a small cost never reads as $0.00 and an average is not ten digits long."""
    return _money(value, exact=False)


@register.filter
def usd_exact(value: Any) -> str:
    """One record's own amount (a request's cost and its parts, a catalog price): the same shape as `usd`, never
    rounded ($0.075 stays $0.075, $0.0082726091 stays so, a price of $15.625 per 1M stays $15.625)."""
    return _money(value, exact=True)


def _money(value: Any, *, exact: bool) -> str:
    amount = _decimal(value)
    if amount is None:
        return DASH
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount >= 1 and not exact:
        return f"{sign}${_grouped(amount, 2)}"
    if not exact:  # four significant digits: the exponent of the leading digit says how many decimals that is
        places = min(max(3 - amount.adjusted(), 2), 10)
    else:
        places = min(max(-amount.normalize().as_tuple().exponent, 2), 10)  # type: ignore[operator]
    text = _grouped(amount, places)
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0").ljust(2, "0")
    if whole == "0" and not decimals.strip("0"):  # below a ten-billionth: the smallest step shown
        return f"{sign}$0.0000000001"
    return f"{sign}${whole}.{decimals}"


@register.filter
def ms(value: Any) -> str:
    if value is None or value == "":
        return DASH
    return f"{round(float(value)):,} ms"


@register.filter
def compact(value: Any) -> str:
    """12.5k, 3.4M; below a thousand the plain number."""
    if value is None or value == "":
        return DASH
    number = float(value)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= threshold:
            text = f"{number / threshold:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{round(number):,}"


@register.filter
def tokens(value: Any) -> str:
    if value is None or value == "":
        return DASH
    return f"{compact(value)} token{'' if value == 1 else 's'}"


@register.filter
def ratio_pct(value: Any, places: int = 1) -> str:
    """A 0..1 ratio as a percentage."""
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(places)}f}%"


@register.filter
def pct(value: Any, places: int = 1) -> str:
    """A 0..100 number as a percentage."""
    if value is None or value == "":
        return DASH
    return f"{float(value):.{int(places)}f}%"


@register.filter
def bar_width(value: Any) -> str:
    """A 0..1 share as a CSS width, never wider than the track and never invisible when non-zero."""
    share = float(value or 0)
    if share <= 0:
        return "0%"
    return f"{max(min(share * 100, 100), 1):.1f}%"


@register.filter
def pct_width(value: Any) -> str:
    """A 0..100 percentage as a CSS width (see bar_width)."""
    amount = _decimal(value)
    return bar_width(amount / 100 if amount is not None else 0)


@register.filter
def per_thousand(amount: Any, count: Any) -> Decimal | None:
    """Cost per 1,000 units (tokens), exact."""
    total, units = _decimal(amount), _decimal(count)
    if total is None or not units:
        return None
    return total * 1000 / units


@register.filter
def content_parts(content: Any) -> list[tuple[str, str]]:
    """A message's content (a string or OpenAI content parts) as (kind, text) pairs; images by kind only."""
    if content is None:
        return []
    if isinstance(content, str):
        return [("text", content)]
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                kind = str(part.get("type", "part"))
                parts.append((kind, str(part.get("text", "")) if kind == "text" else ""))
            else:
                parts.append(("text", str(part)))
        return parts
    return [("text", str(content))]


@register.filter
def json_pretty(text: Any) -> str:
    """A tool call's arguments (a JSON string) indented for reading; anything that is not JSON as it is."""
    if not isinstance(text, str):
        return "" if text is None else json.dumps(text, indent=2, ensure_ascii=False)
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@register.filter
def embedding_items(inputs: Any) -> list[tuple[str, str]]:
    """An embeddings row's inputs (kept in its messages column) as (kind, text): a text, or a token array by size."""
    if not isinstance(inputs, list):
        return []
    items = []
    for item in inputs:
        if isinstance(item, str):
            items.append(("text", item))
        elif isinstance(item, list):
            items.append(("tokens", f"token array of {len(item):,} tokens"))
    return items


@register.filter
def window_owner(window: Any) -> str:
    """Whose a budget window is, from budgets.rules.window_name ("<scope> <owner's name> <period>"): "You",
    "Team core", "Key “laptop”"."""
    scope, _, name = str(window.name).rsplit(" ", 1)[0].partition(" ")
    if scope == "team":
        return f"Team {name}"
    if scope == "key":
        return f"Key “{name}”"
    return "You"


@register.filter
def alert_text(alert: Any) -> str:
    """A fired budget alert as the banner says it: "Team core's daily budget is at 80%"."""
    budget = alert.budget
    if budget.scope == "team":
        whose = f"Team {budget.team.name}'s"
    elif budget.scope == "key":
        whose = f"Key “{budget.api_key.name}”'s"
    else:
        whose = "Your"
    return f"{whose} {budget.period} budget is at {alert.threshold}%"
