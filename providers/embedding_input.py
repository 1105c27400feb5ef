"""The shapes an embeddings `input` may take (OpenAI's CreateEmbeddingRequest), shared by /v1/embeddings and
/v1/tokens/estimate: a string, a list of strings, a token array, or a list of token arrays."""

from __future__ import annotations

from typing import Any

MAX_INPUTS = 2048  # items in any array: the list of inputs, or one token array (OpenAI's maxItems)
MAX_TOKEN_ID = 2**32 - 1
SHAPES = "a string, a list of strings, a token array or a list of token arrays"


class InputError(ValueError):
    """An input that is none of the shapes; `param` names the offending item (input, input[3])."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_ID


def _token_array(value: list[Any], param: str) -> list[int]:
    if not value:
        raise InputError(f"'{param}' must not be an empty token array", param)
    if len(value) > MAX_INPUTS:
        raise InputError(
            f"'{param}' has {len(value)} tokens; a token array holds at most {MAX_INPUTS}", param
        )
    if not all(_is_token(t) for t in value):
        raise InputError(f"'{param}' must hold token ids, non-negative integers", param)
    return value


def _texts(items: list[Any]) -> list[str]:
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise InputError(f"input must be {SHAPES}, not a mix", f"input[{index}]")
        if not text:
            raise InputError("input must not contain an empty string", f"input[{index}]")
    return items


def embedding_inputs_parse(value: Any) -> list[str] | list[list[int]]:
    """The inputs as a list: texts, or token arrays (a single token array becomes a list of one).

    Raises InputError for a missing, empty or mixed input, an empty string, or more than 2,048 items.
    """
    if value is None:
        raise InputError("you must provide an input", "input")
    if isinstance(value, str):
        if not value:
            raise InputError("input must not be an empty string", "input")
        return [value]
    if not isinstance(value, list):
        raise InputError(f"input must be {SHAPES}", "input")
    if not value:
        raise InputError("input must not be an empty list", "input")
    if len(value) > MAX_INPUTS:
        raise InputError(f"input has {len(value)} items; at most {MAX_INPUTS} per request", "input")
    first = value[0]
    if isinstance(first, str):
        return _texts(value)
    if _is_token(first):
        return [_token_array(value, "input")]
    if isinstance(first, list):
        arrays = []
        for index, item in enumerate(value):
            if not isinstance(item, list):
                raise InputError(f"input must be {SHAPES}, not a mix", f"input[{index}]")
            arrays.append(_token_array(item, f"input[{index}]"))
        return arrays
    raise InputError(f"input must be {SHAPES}", "input")
