"""JSON bodies the router accepts: DRF's parser for the DRF endpoints, and the limits every /v1 body obeys."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Deeper than any real JSON schema or tool definition, and well inside what recursive code can take: Python's
# json and DRF recurse once per level (the interpreter stops at ~1000), orjson's encoder at 255.
MAX_JSON_DEPTH = 128


def json_body_problem(value: Any, *, check_nul: bool = True) -> tuple[str, str | None] | None:
    """Why a parsed body can't be taken, with the path of the offending value, or None.

    Too deep a nesting would crash whatever recurses over it later; a NUL character can't be stored in
    PostgreSQL (text or jsonb), so a request carrying one would fail only at its log write, after the
    provider was paid. The walk is iterative, so any input is safe to check.
    """
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if check_nul and "\x00" in item:
                return "strings may not contain NUL (\\u0000) characters", ".".join(path) or None
            continue
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            return f"the body nests deeper than {MAX_JSON_DEPTH} levels", path[0] if path else None
        for key, child in children:
            if check_nul and isinstance(key, str) and "\x00" in key:
                return "keys may not contain NUL (\\u0000) characters", ".".join(path) or None
            if isinstance(child, str | dict | list):
                stack.append((child, depth + 1, (*path, str(key))))
    return None


class JSONParser(parsers.JSONParser):
    """DRF's parser with the depth limit: Python's json module recurses once per nesting level, and 10,000
    levels raise RecursionError (not the ValueError DRF turns into a 400), which would surface as a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                f"JSON parse error - the body nests deeper than {MAX_JSON_DEPTH} levels"
            ) from None
        problem = json_body_problem(data, check_nul=False)  # each field's own validation handles NUL
        if problem is not None:
            message, path = problem
            raise ParseError(f"JSON parse error - {message}" + (f" (at {path})" if path else ""))
        return data
