"""Plausible, deterministic instances of a JSON schema: tool arguments and structured answers that validate.

Covers what tool and response schemas use in practice: types (a list of types, or Gemini's upper-case names),
`enum`/`const`, `required` properties (optional ones are left out), nested objects, arrays with
`minItems`/`maxItems`/`uniqueItems`/`prefixItems`, numbers within `minimum`/`maximum` (exclusive ones and
`multipleOf` too), string `format`s and lengths, `anyOf`/`oneOf` (the first non-null branch), `allOf` and
`$ref` into `$defs`/`definitions`. Not `pattern`: a string is not generated to match a regular expression.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

DEFAULT_PLACE = "Paris"
DEFAULT_STRING = "example"
MAX_DEPTH = 16  # deeper than this (a recursive schema), arrays get only their minItems
MAX_FILLED_DEPTH = 4  # below this depth, optional arrays stop growing: one item each above it
# Caps on what a schema can ask for, so a hostile `minItems` or `minLength` costs no memory (nor validates).
MAX_ITEMS = 100
MAX_STRING_CHARS = 1000
MAX_WORK = 5000  # values built and references followed per instance: past it, the rest is left empty

# Property-name words that say what a string is; the first group that matches a word of the name wins.
PLACE_WORDS = frozenset({"location", "city", "place", "town", "destination", "origin", "locality", "where"})
QUERY_WORDS = frozenset(
    {"query", "q", "search", "question", "prompt", "input", "text", "message", "topic", "keyword", "keywords"}
)
ANSWER_WORDS = frozenset(
    {"answer", "reply", "response", "summary", "content", "output", "result", "explanation", "description"}
)
NAMED_STRINGS: dict[str, str] = {
    "country": "France",
    "email": "user@example.com",
    "url": "https://example.com",
    "uri": "https://example.com",
    "link": "https://example.com",
    "website": "https://example.com",
    "date": "2025-01-01",
    "language": "en",
    "lang": "en",
    "locale": "en-US",
    "currency": "EUR",
    "unit": "celsius",
    "units": "metric",
    "timezone": "Europe/Paris",
    "color": "blue",
    "colour": "blue",
    "name": "Example",
    "title": "Example",
}
FORMAT_STRINGS: dict[str, str] = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T12:00:00Z",
    "time": "12:00:00Z",
    "duration": "PT1H",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com",
    "iri": "https://example.com",
    "uri-reference": "https://example.com",
    "url": "https://example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
}
# Words that open a sentence or a question, never the place a question is about.
NOT_PLACES = frozenset(
    {"I", "What", "What's", "Whats", "How", "Is", "Are", "Can", "Could", "Will", "Would", "Tell", "Please"}
)
PLACE_AFTER = re.compile(r"\b(?i:in|at|for|to|from|near|of|about)\s+([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)")
# Keywords that constrain an object beyond "any object".
OBJECT_CONSTRAINTS = ("required", "$ref", "allOf", "anyOf", "oneOf", "patternProperties", "minProperties")
NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass(frozen=True, slots=True)
class Hints:
    """What the conversation offers to fill strings with."""

    places: tuple[str, ...] = (DEFAULT_PLACE,)  # city/location-like words of the user's text, in order
    query: str = ""  # the user's text, for query-like strings
    answer: str = ""  # the answer's sentences, for answer-like strings


def places_in(text: str) -> tuple[str, ...]:
    """The places a text is about, in order: capitalised words after "in", "at", "from", "to"..., else a
    capitalised word that does not open a sentence, else Paris."""
    found: dict[str, None] = {}
    for match in PLACE_AFTER.finditer(text):
        words = [word for word in match.group(1).split() if word not in NOT_PLACES]
        if words:
            found.setdefault(" ".join(words))
    if found:
        return tuple(found)
    words = text.split()
    for index, raw in enumerate(words):
        word = raw.strip(".,;:!?\"'()[]")
        opens_a_sentence = index == 0 or words[index - 1][-1] in ".!?"
        if not opens_a_sentence and word[:1].isupper() and word[1:2].islower() and word not in NOT_PLACES:
            return (word,)
    return (DEFAULT_PLACE,)


def place_in(text: str) -> str:
    return places_in(text)[0]


def name_words(name: str) -> list[str]:
    """The lower-case words of an identifier: "getWeather", "get_weather" and "get-weather" give both words."""
    return [word.lower() for word in NAME_WORDS.findall(name)]


def is_open_object(schema: Any) -> bool:
    """A schema that says nothing about an object's properties: absent, `{}`, `{"type": "object"}`, or
    `"properties": {}` without `"additionalProperties": false`; any object validates against it."""
    if schema is None or schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type", "object")
    if not isinstance(kind, str) or kind.lower() != "object":
        return False
    return (
        not schema.get("properties")
        and schema.get("additionalProperties", True) is not False
        and not any(schema.get(key) for key in OBJECT_CONSTRAINTS)
    )


def instance(schema: Any, hints: Hints, name: str = "") -> Any:
    """A value that validates against `schema`, chosen from `hints` and the property `name` where sensible."""
    return _Builder(schema, hints).value(schema, name, depth=0, variant=0)


class _Builder:
    def __init__(self, root: Any, hints: Hints) -> None:
        self.root = root
        self.hints = hints
        self.places_used = 0  # "from Rome to Berlin": the first place-like string gets Rome, the next Berlin
        self.work = 0

    def value(self, schema: Any, name: str, depth: int, variant: int) -> Any:
        self.work += 1
        if self.work > MAX_WORK:
            return None  # a schema that asks for too much (nested arrays of 100s, say): stop filling
        schema = self.resolve(schema, depth)
        if not isinstance(schema, dict):
            return self.string({}, name, variant)  # `true` or nothing: anything goes, a string will do
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[variant % len(enum)]
        kind = _type_of(schema)
        if depth > MAX_DEPTH and kind in ("object", "array"):
            return {} if kind == "object" else []  # a recursive schema: stop here
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer", variant=variant)
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        return self.string(schema, name, variant)

    def resolve(self, schema: Any, depth: int) -> Any:
        """Follow `$ref`s, take the first non-null branch of `anyOf`/`oneOf`, merge `allOf` (sibling keys kept)."""
        for _ in range(MAX_DEPTH):
            self.work += 1
            if not isinstance(schema, dict) or depth > MAX_DEPTH or self.work > MAX_WORK:
                return schema
            if isinstance(schema.get("$ref"), str):
                target = self.pointer(schema["$ref"])
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                schema = _merge(target, rest) if isinstance(target, dict) else rest
                continue
            for key in ("anyOf", "oneOf"):
                branches = schema.get(key)
                if isinstance(branches, list) and branches:
                    resolved = [self.resolve(branch, depth + 1) for branch in branches]
                    chosen = next((b for b in resolved if _type_of(b) != "null"), resolved[0])
                    rest = {k: v for k, v in schema.items() if k != key}
                    schema = _merge(rest, chosen) if isinstance(chosen, dict) else rest
                    break
            else:
                parts = schema.get("allOf")
                if isinstance(parts, list) and parts:
                    merged = {k: v for k, v in schema.items() if k != "allOf"}
                    for part in parts:
                        part = self.resolve(part, depth + 1)
                        if isinstance(part, dict):
                            merged = _merge(merged, part)
                    schema = merged
                    continue
                return schema
        return schema

    def pointer(self, ref: str) -> Any:
        """A local JSON pointer ("#", "#/$defs/City"); anything else resolves to nothing."""
        if not ref.startswith("#"):
            return None
        node = self.root
        for token in filter(None, ref[1:].split("/")):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict):
                node = node.get(token)
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        extra = schema.get("additionalProperties")
        required = schema.get("required")
        required = [key for key in required if isinstance(key, str)] if isinstance(required, list) else []
        result: dict[str, Any] = {}
        for key in required:
            sub = properties.get(key, extra if isinstance(extra, dict) else {})
            result[key] = self.value(sub, key, depth + 1, 0)
        # The fake answered {"location": "Paris"} before it read schemas: an optional location stays filled.
        if "location" in properties and "location" not in result:
            result["location"] = self.value(properties["location"], "location", depth + 1, 0)
        wanted = schema.get("minProperties")
        for key, sub in properties.items():
            if not isinstance(wanted, int) or len(result) >= wanted:
                break
            result.setdefault(key, self.value(sub, key, depth + 1, 0))
        return result

    def array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(items, list):  # draft 4 to 2019-09 tuples
            prefix, items = items, schema.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        low = _int(schema.get("minItems")) or 0
        high = _int(schema.get("maxItems"))
        count = max(low, len(prefix), 0 if depth >= MAX_FILLED_DEPTH else 1)
        if high is not None:
            count = max(min(count, high), low)
        count = min(count, MAX_ITEMS)
        singular = name[:-3] + "y" if name.endswith("ies") else name.removesuffix("s")  # "cities": "city"
        values = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else items
            values.append(self.value(sub if sub is not None else {}, singular, depth + 1, index))
        return values

    def string(self, schema: dict[str, Any], name: str, variant: int) -> str:
        kind = str(schema.get("format", "")).lower()
        if kind in FORMAT_STRINGS:
            text = _formatted(kind, variant)
        else:
            text = self.named(name)
            if variant:
                text = f"{text} {variant + 1}"  # distinct items in an array (uniqueItems)
        low = _int(schema.get("minLength")) or 0
        high = _int(schema.get("maxLength"))
        if len(text) < low:
            text = text.ljust(min(low, MAX_STRING_CHARS), "x")
        if high is not None and len(text) > high:
            text = text[:high]
        return text

    def named(self, name: str) -> str:
        words = name_words(name)
        if PLACE_WORDS.intersection(words):
            places = self.hints.places or (DEFAULT_PLACE,)
            self.places_used += 1
            return places[(self.places_used - 1) % len(places)]
        if QUERY_WORDS.intersection(words) and self.hints.query:
            return self.hints.query
        if ANSWER_WORDS.intersection(words) and self.hints.answer:
            return self.hints.answer
        for word in words:
            if word in NAMED_STRINGS:
                return NAMED_STRINGS[word]
        return DEFAULT_STRING


def _formatted(kind: str, variant: int) -> str:
    """A string of a `format`; another one of the same format for each variant (items of an array)."""
    text = FORMAT_STRINGS[kind]
    if not variant:
        return text
    n = variant % 28 + 1  # a day of any month, an hour, a host number...
    if kind in ("date", "date-time"):
        return text.replace("-01-01", f"-01-{n:02d}")
    if kind == "time":
        return f"12:{n:02d}:00Z"
    if kind == "duration":
        return f"PT{n}H"
    if kind == "ipv4":
        return f"192.0.2.{n}"
    if kind == "ipv6":
        return f"2001:db8::{n:x}"
    if kind == "uuid":
        return text[:-2] + f"{n:02d}"
    if "email" in kind:
        return f"user{n}@example.com"
    if "hostname" in kind:
        return f"host{n}.example.com"
    return f"{text}/{n}"  # a URI


def _type_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "string"
    kind = schema.get("type")
    if isinstance(kind, list):
        names = [str(k).lower() for k in kind]
        return next((k for k in names if k != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()  # Gemini's schemas say "STRING", "OBJECT"...
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two schemas' keywords together: properties and required are united, other keys of `extra` win."""
    merged = {**base, **extra}
    if isinstance(base.get("properties"), dict) and isinstance(extra.get("properties"), dict):
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if isinstance(base.get("required"), list) and isinstance(extra.get("required"), list):
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(schema: dict[str, Any], *, integer: bool, variant: int) -> int | float:
    """1 (or 1 + variant, or a multiple of `multipleOf`) moved inside the bounds if it is outside them."""
    try:
        return _bounded_number(schema, integer=integer, variant=variant)
    except (OverflowError, ValueError):  # bounds beyond what a float holds: 1 is as good as any
        return 1


def _bounded_number(schema: dict[str, Any], *, integer: bool, variant: int) -> int | float:
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum")
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum")
    step = schema.get("multipleOf")
    if not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0:
        step = None
    wanted: float = (step or 1) * (1 + variant)
    if low is not None and (wanted < low or (low_open and wanted <= low)):
        if step is not None:
            k = math.ceil(low / step)
            wanted = (k + 1 if low_open and k * step <= low else k) * step
        elif integer:
            wanted = math.floor(low) + 1 if low_open else math.ceil(low)
        else:
            wanted = low if not low_open else (low + high) / 2 if high is not None else low + 1
    if high is not None and (wanted > high or (high_open and wanted >= high)):
        if step is not None:
            k = math.floor(high / step)
            wanted = (k - 1 if high_open and k * step >= high else k) * step
        elif integer:
            wanted = math.ceil(high) - 1 if high_open else math.floor(high)
        else:
            wanted = high if not high_open else (high + low) / 2 if low is not None else high - 1
    if integer or float(wanted).is_integer():
        return int(wanted)
    return float(wanted)


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """A bound and whether it is exclusive, for draft 4's boolean `exclusiveMinimum` and draft 6's number."""
    number = (int, float)
    value, flag = schema.get(inclusive), schema.get(exclusive)
    if isinstance(flag, number) and not isinstance(flag, bool):
        if isinstance(value, number) and not isinstance(value, bool) and value > flag:
            return value, False
        return flag, True
    if isinstance(value, number) and not isinstance(value, bool):
        return value, flag is True
    return None, False
