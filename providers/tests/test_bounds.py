"""The prompt bound is at or above every tokenizer's count, the whole tools JSON included."""

from __future__ import annotations

import pytest

from providers.bounds import IMAGE_TOKENS_BOUND, prompt_tokens_bound
from providers.tokens import count_message_tokens

TEXTS = [
    "What is the capital of France?",
    "1234567890 " * 50,
    "日本語のテキスト、絵文字 🎉🎉🎉",
    "a" * 5000,
    "",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize(
    ("model", "provider"),
    [("gpt-4o-mini", "openai"), ("gpt-3.5-turbo", "openai"), ("claude-sonnet-4-5-20250929", "anthropic"),
     ("gemini-2.5-flash", "google"), ("deepseek-chat", "deepseek")],
)  # fmt: skip
def test_the_bound_is_at_or_above_our_own_counts(text, model, provider):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    assert prompt_tokens_bound(messages) >= count_message_tokens(messages, model, provider).tokens


def test_a_fake_counting_ten_plus_words_stays_under_the_bound():
    for text in TEXTS:
        messages = [{"role": "user", "content": text}]
        assert prompt_tokens_bound(messages) >= 10 + len(text.split())


def test_text_hidden_in_defs_and_additional_properties_counts():
    big = "x" * 100_000
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "type": "object",
                    "$defs": {"d": {"description": big}},
                    "additionalProperties": {"description": big},
                },
            },
        }
    ]
    messages = [{"role": "user", "content": "hi"}]
    assert prompt_tokens_bound(messages, tools=tools) > 200_000


def test_an_image_counts_its_allowance_not_its_base64_bytes():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 1_000_000}}
    bound = prompt_tokens_bound(
        [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}]
    )
    assert IMAGE_TOKENS_BOUND < bound < IMAGE_TOKENS_BOUND + 200
