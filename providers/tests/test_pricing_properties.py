"""Every cent is right, for every vendor's usage shape: drawn usages go through the vendor's wire format (the fake
upstream's rendering) and the real adapter, as a JSON answer and as a stream, and are priced by cost_of_usage.

Checked for each draw: both parses give the same Usage, and the one the counts mean; the cost equals an
independent formula written here with exact Fractions; the cost never exceeds worst_case_cost for the same
prompt size and output cap. Pure functions only: no network, no database.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from providers.adapters import anthropic, gemini
from providers.adapters.base import ChatResult, StreamDelta, Usage
from providers.adapters.deepseek import DeepSeekAdapter
from providers.adapters.openai import ChatCompletionsStreamDecoder, OpenAIAdapter
from providers.adapters.sse import StreamDecoder, decode_stream, iter_sse
from providers.cost_bounds import worst_case_cost
from providers.fake_upstream.answers import Answer, Prompt
from providers.fake_upstream.anthropic_wire import AnthropicFormat
from providers.fake_upstream.gemini_wire import GeminiFormat
from providers.fake_upstream.openai_wire import DeepSeekFormat, OpenAIFormat
from providers.fake_upstream.wire import WireFormat
from providers.pricing import Rates, cost_breakdown, cost_of_usage

EXAMPLES = settings(
    max_examples=2000,
    deadline=None,
    database=None,  # no saved examples: a failure prints the draw that reproduces it
    suppress_health_check=[HealthCheck.too_slow],
)
MILLION = 10**6
QUANTA = 10**10  # amounts are rounded half-up to ten decimal places
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what httpx's aiter_lines splits on


# --- the vendors: wire format, model, and the adapter's two parsers -----------------------------------------


@dataclass(frozen=True)
class Vendor:
    wire: WireFormat
    model: str
    parse: Callable[[dict[str, Any]], ChatResult]
    decoder: Callable[[], StreamDecoder]
    cache_writes: bool = False  # the usage reports cache writes (Anthropic only)
    reasoning_reported: bool = True  # a separate reasoning count (Anthropic's is inside output_tokens)


OPENAI, DEEPSEEK = OpenAIAdapter(), DeepSeekAdapter()
VENDORS = {
    "openai": Vendor(
        wire=OpenAIFormat(),
        model="gpt-5",
        parse=OPENAI.parse_response,
        decoder=lambda: ChatCompletionsStreamDecoder(OPENAI),
    ),
    "deepseek": Vendor(
        wire=DeepSeekFormat(),
        model="deepseek-reasoner",
        parse=DEEPSEEK.parse_response,
        decoder=lambda: ChatCompletionsStreamDecoder(DEEPSEEK),
    ),
    "anthropic": Vendor(
        wire=AnthropicFormat(),
        model="claude-sonnet-4-5-20250929",
        parse=lambda payload: anthropic.parse_response("anthropic", payload, json_mode=False),
        decoder=lambda: anthropic.AnthropicStreamDecoder("anthropic", json_mode=False),
        cache_writes=True,
        reasoning_reported=False,
    ),
    "google": Vendor(
        wire=GeminiFormat(),
        model="gemini-2.5-pro",
        parse=lambda payload: gemini.parse_response("google", payload),
        decoder=lambda: gemini.GeminiStreamDecoder("google"),
    ),
}


# --- strategies ---------------------------------------------------------------------------------------------


@st.composite
def rates(draw: st.DrawFn) -> Rates:
    # Up to 100 USD per 1M with as many decimal places as a price row holds (10), or as few as list prices.
    places = draw(st.sampled_from([2, 4, 10]))
    rate = st.integers(0, 100 * 10**places).map(lambda n: Decimal(n).scaleb(-places))
    optional = st.none() | rate
    threshold = draw(st.one_of(st.none(), st.just(200_000), st.integers(0, 5_000)))
    long_rates: dict[str, Decimal | None] = {}
    if threshold is not None:
        long_rates = {
            "long_input_per_1m": draw(optional),
            "long_output_per_1m": draw(optional),
            "long_cached_input_per_1m": draw(optional),
        }
    return Rates(
        input_per_1m=draw(rate),
        output_per_1m=draw(rate),
        cached_input_per_1m=draw(optional),
        cache_write_5m_per_1m=draw(optional),
        cache_write_1h_per_1m=draw(optional),
        long_context_threshold=threshold,
        **long_rates,
    )


@dataclass(frozen=True)
class Counts:
    """A usage as the vendor meters it, before any wire format: what the answer really consumed."""

    prompt: int  # all input, cache reads and writes included
    cached: int
    written: int
    written_1h: int
    visible_output: int
    reasoning: int
    words: int  # words of answer text (the stream has one content event per word)


@st.composite
def counts(draw: st.DrawFn, vendor: Vendor, threshold: int | None) -> Counts:
    sizes = [st.integers(0, 50), st.integers(0, 3_000_000)]
    if threshold is not None:
        # Just below, at and just above the long-context threshold.
        sizes.append(st.integers(max(0, threshold - 3), threshold + 3))
    prompt = draw(st.one_of(sizes))
    cached = draw(st.integers(0, prompt))
    written = draw(st.integers(0, prompt - cached)) if vendor.cache_writes else 0
    return Counts(
        prompt=prompt,
        cached=cached,
        written=written,
        written_1h=draw(st.integers(0, written)),
        visible_output=draw(st.one_of(st.integers(0, 20), st.integers(0, 200_000))),
        reasoning=draw(st.one_of(st.just(0), st.integers(0, 100_000))),
        words=draw(st.integers(0, 3)),
    )


# --- the independent formula --------------------------------------------------------------------------------


def _fraction(rate: Decimal | None) -> Fraction | None:
    return None if rate is None else Fraction(rate)


def expected_costs(rates: Rates, usage: Usage) -> tuple[Decimal, Decimal]:
    """(input cost, output cost) by the contract, in exact rational arithmetic, each rounded half-up once."""
    base_input = Fraction(rates.input_per_1m)
    cached = _fraction(rates.cached_input_per_1m)
    write_5m = _fraction(rates.cache_write_5m_per_1m)
    write_1h = _fraction(rates.cache_write_1h_per_1m)
    output = Fraction(rates.output_per_1m)
    threshold = rates.long_context_threshold
    if threshold is not None and usage.prompt_tokens > threshold:
        long_input = _fraction(rates.long_input_per_1m)
        # Cache-write rates follow the input rate up to the long tier (when both rates say how).
        ratio = long_input / base_input if long_input is not None and base_input else Fraction(1)
        in_rate = base_input if long_input is None else long_input
        long_cached = _fraction(rates.long_cached_input_per_1m)
        cached_rate = long_cached if long_cached is not None else cached if cached is not None else in_rate
        write_5m_rate = in_rate if write_5m is None else write_5m * ratio
        write_1h_rate = write_5m_rate if write_1h is None else write_1h * ratio
        long_output = _fraction(rates.long_output_per_1m)
        out_rate = output if long_output is None else long_output
    else:
        in_rate = base_input
        cached_rate = base_input if cached is None else cached
        write_5m_rate = base_input if write_5m is None else write_5m
        write_1h_rate = write_5m_rate if write_1h is None else write_1h
        out_rate = output
    plain = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    five_minute = usage.cache_write_tokens - usage.cache_write_1h_tokens
    input_usd = (
        plain * in_rate
        + usage.cached_tokens * cached_rate
        + five_minute * write_5m_rate
        + usage.cache_write_1h_tokens * write_1h_rate
    ) / MILLION
    return _half_up(input_usd), _half_up(usage.completion_tokens * out_rate / MILLION)


def _half_up(amount: Fraction) -> Decimal:
    return Decimal(math.floor(amount * QUANTA + Fraction(1, 2))) / QUANTA


# --- rendering and parsing, without a network -----------------------------------------------------------------


def answer_for(vendor: Vendor, drawn: Counts) -> tuple[Answer, Prompt]:
    answer = Answer(
        model=vendor.model,
        text=" ".join(["lorem"] * drawn.words),
        finish="stop",
        prompt_tokens=drawn.prompt,
        output_tokens=drawn.visible_output,
        reasoning_tokens=drawn.reasoning,
        cached_tokens=drawn.cached,
        cache_write_tokens=drawn.written,
        cache_write_1h_tokens=drawn.written_1h,
    )
    prompt = Prompt(model=vendor.model, message_texts=["Hi"], stream=True, include_usage=True)
    return answer, prompt


def parsed_answer(vendor: Vendor, answer: Answer, prompt: Prompt) -> Usage:
    body, _headers = vendor.wire.response(answer, prompt)
    return vendor.parse(json.loads(orjson.dumps(body))).usage


async def _lines(text: str) -> AsyncIterator[str]:
    for line in LINE_BREAK.split(text):
        yield line


async def _deltas(vendor: Vendor, raw: str) -> list[StreamDelta]:
    return [delta async for delta in decode_stream(iter_sse(_lines(raw)), vendor.decoder())]


def _run(coroutine: Coroutine[Any, Any, list[StreamDelta]]) -> list[StreamDelta]:
    """Run a coroutine that never waits for I/O (the lines are all here) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("the stream decoder waited for I/O")


def parsed_stream(vendor: Vendor, answer: Answer, prompt: Prompt) -> Usage:
    plan = vendor.wire.stream(answer, prompt)
    raw = b"".join([*plan.head, *plan.content, *plan.tail]).decode()
    usages = [delta.usage for delta in _run(_deltas(vendor, raw)) if delta.usage is not None]
    assert len(usages) == 1, usages
    return usages[0]


# --- the property ---------------------------------------------------------------------------------------------


def check_every_cent(vendor: Vendor, data: st.DataObject) -> None:
    price = data.draw(rates(), label="rates")
    drawn = data.draw(counts(vendor, price.long_context_threshold), label="counts")
    answer, prompt = answer_for(vendor, drawn)

    plain = parsed_answer(vendor, answer, prompt)
    streamed = parsed_stream(vendor, answer, prompt)

    assert streamed == plain
    assert plain == Usage(
        prompt_tokens=drawn.prompt,
        completion_tokens=drawn.visible_output + drawn.reasoning,  # reasoning and thoughts are output
        cached_tokens=drawn.cached,
        reasoning_tokens=drawn.reasoning if vendor.reasoning_reported else 0,
        cache_write_tokens=drawn.written,
        cache_write_1h_tokens=drawn.written_1h,
    )
    cost = cost_of_usage(price, plain)
    assert cost_of_usage(price, streamed) == cost
    expected_input, expected_output = expected_costs(price, plain)
    assert (cost.input_cost, cost.output_cost) == (expected_input, expected_output)
    assert cost.total == expected_input + expected_output
    parts = cost_breakdown(price, plain)
    assert parts.cost() == cost
    amounts = (parts.input, parts.cached, parts.cache_write_5m, parts.cache_write_1h, parts.output)
    assert {a.as_tuple().exponent for a in amounts} == {-10}  # every part to 10 places, cached or not
    # What the draws covered, for `pytest --hypothesis-show-statistics`.
    event("long-context tier" if parts.long_context else "base tier")
    if plain.cache_write_1h_tokens:
        event("1-hour cache writes")
    max_output = plain.completion_tokens + data.draw(st.integers(0, 10_000), label="spare output")
    assert cost.total <= worst_case_cost(price, plain.prompt_tokens, max_output)


@EXAMPLES
@given(data=st.data())
def test_openai_usage_costs_every_cent_streamed_or_not(data: st.DataObject) -> None:
    check_every_cent(VENDORS["openai"], data)


@EXAMPLES
@given(data=st.data())
def test_anthropic_usage_costs_every_cent_streamed_or_not(data: st.DataObject) -> None:
    check_every_cent(VENDORS["anthropic"], data)


@EXAMPLES
@given(data=st.data())
def test_gemini_usage_costs_every_cent_streamed_or_not(data: st.DataObject) -> None:
    check_every_cent(VENDORS["google"], data)


@EXAMPLES
@given(data=st.data())
def test_deepseek_usage_costs_every_cent_streamed_or_not(data: st.DataObject) -> None:
    check_every_cent(VENDORS["deepseek"], data)
