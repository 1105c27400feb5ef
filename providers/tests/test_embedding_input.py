"""Embeddings input: the shapes accepted, how its tokens are counted and bounded, and token arrays decoded."""

from __future__ import annotations

import pytest

from providers.bounds import inputs_tokens_bound
from providers.embedding_input import MAX_INPUTS, InputError, embedding_inputs_parse
from providers.token_encodings import get_encoding
from providers.tokens import count_input_tokens, decode_tokens


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", ["hello"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2, 3], [[1, 2, 3]]),  # one token array
        ([[1, 2], [3]], [[1, 2], [3]]),
        (["x"] * MAX_INPUTS, ["x"] * MAX_INPUTS),
    ],
)
def test_every_openai_shape_becomes_a_list_of_inputs(value, expected):
    assert embedding_inputs_parse(value) == expected


@pytest.mark.parametrize(
    ("value", "param"),
    [
        (None, "input"),
        ("", "input"),
        ([], "input"),
        (["ok", ""], "input[1]"),
        (["x"] * (MAX_INPUTS + 1), "input"),
        ([0] * (MAX_INPUTS + 1), "input"),
        (["text", [1]], "input[1]"),
        ([[1], "text"], "input[1]"),
        ([[1], []], "input[1]"),
        ([[1, -1]], "input[0]"),
        ([[1, True]], "input[0]"),
        ([1.5], "input"),
        ({"text": "hi"}, "input"),
        (42, "input"),
    ],
)
def test_anything_else_is_refused_naming_the_item(value, param):
    with pytest.raises(InputError) as refused:
        embedding_inputs_parse(value)
    assert refused.value.param == param


def test_openai_embedding_models_count_with_cl100k_and_token_arrays_count_exactly():
    encoding = get_encoding("cl100k_base")
    assert encoding is not None
    texts = ["The quick brown fox", "jumps over the lazy dog again and again"]
    counted = count_input_tokens(texts, "text-embedding-3-small", "openai")
    lengths = [len(encoding.encode(t)) for t in texts]
    assert counted.method == "tiktoken:cl100k_base"
    assert (counted.total, counted.longest) == (sum(lengths), max(lengths))
    arrays = count_input_tokens([[1, 2, 3], [4]], "text-embedding-3-large", "openai")
    assert (arrays.total, arrays.longest) == (4, 3)


def test_gemini_inputs_are_approximated_and_labelled_so():
    counted = count_input_tokens(["hello world"] * 3, "gemini-embedding-001", "google")
    assert counted.method == "approx" and counted.total == 3 * counted.longest > 0


def test_the_bound_covers_every_token_of_every_input():
    texts = ["héllo wörld, ça va?", "数据" * 50, "a"]
    counted = count_input_tokens(texts, "text-embedding-3-small", "openai")
    assert inputs_tokens_bound(texts) >= counted.total
    assert inputs_tokens_bound([[1, 2, 3]]) >= 3


def test_token_arrays_decode_in_the_models_encoding_or_not_at_all():
    tokens = get_encoding("cl100k_base").encode("The cat sat on the mat.")  # type: ignore[union-attr]
    assert decode_tokens(tokens, "text-embedding-3-small", "openai") == "The cat sat on the mat."
    assert decode_tokens([10**9], "text-embedding-3-small", "openai") is None  # not a cl100k id
    assert decode_tokens(tokens, "gemini-embedding-001", "google") is None  # no offline tokenizer
