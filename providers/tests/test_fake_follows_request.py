"""The fake upstream's answers follow the request (#18), in every vendor's wire format: tool arguments that
validate against the tool's schema, JSON when JSON is asked for, whole sentences within max_tokens, and a text
answer built on the tool result once a tool has answered."""

import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from providers.fake_upstream import FakeUpstreamProcess
from providers.fake_upstream.schemas import Hints, instance, place_in

QUESTION = "Hello there, how are you doing today, my dear friend?"
WEATHER_QUESTION = "What's the weather in Rome today?"
TOOL_RESULT = "Sunny and 21 C in Rome"
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TRIP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "trip": {"$ref": "#/$defs/Trip"},
        "travellers": {"type": "integer", "minimum": 2, "maximum": 9},
        "mode": {"type": "string", "enum": ["train", "plane", "car"]},
        "notes": {"type": "string"},
    },
    "required": ["trip", "travellers", "mode"],
    "additionalProperties": False,
    "$defs": {
        "Trip": {
            "type": "object",
            "properties": {
                "from_city": {"type": "string"},
                "to_city": {"type": "string"},
                "dates": {"type": "array", "items": {"type": "string", "format": "date"}, "minItems": 2},
                "flexible": {"type": "boolean"},
                "budget": {"anyOf": [{"type": "null"}, {"type": "number", "exclusiveMinimum": 100}]},
                "stops": {"type": "array", "items": {"$ref": "#/$defs/Stop"}, "minItems": 1, "maxItems": 3},
            },
            "required": ["from_city", "to_city", "dates", "flexible", "budget", "stops"],
            "additionalProperties": False,
        },
        "Stop": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 2}, "nights": {"type": "integer"}},
            "required": ["city", "nights"],
            "additionalProperties": False,
        },
    },
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 2},
        "city": {"type": "string"},
    },
    "required": ["answer", "confidence", "tags", "city"],
    "additionalProperties": False,
}
SENTENCE_ENDS = (".", "!", "?")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstreamProcess]:
    with FakeUpstreamProcess() as process:
        yield process


@pytest.fixture
def client(upstream: FakeUpstreamProcess) -> Iterator[httpx.Client]:
    upstream.clear()
    with httpx.Client(base_url=upstream.url, timeout=10) as http:
        yield http


def validate(value: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(value)


def gemini_schema(schema: Any) -> Any:
    """A JSON schema the way Gemini's `parameters` and `responseSchema` take it: upper-case types, no
    additionalProperties (what our Gemini adapter sends, plus the OpenAPI-style type names)."""
    if isinstance(schema, list):
        return [gemini_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {}
    for key, value in schema.items():
        if key == "additionalProperties":
            continue
        if key == "type" and isinstance(value, str):
            converted[key] = value.upper()
        elif key == "properties":
            converted[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        else:
            converted[key] = gemini_schema(value)
    return converted


def lower_types(schema: Any) -> Any:
    """Gemini's upper-case types back to JSON Schema's, to validate against."""
    if isinstance(schema, list):
        return [lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: value.lower() if key == "type" and isinstance(value, str) else lower_types(value)
        for key, value in schema.items()
    }


def sse_payloads(raw: str) -> list[Any]:
    payloads = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: ") and line != "data: [DONE]":
                payloads.append(json.loads(line[len("data: ") :]))
    return payloads


# --- each vendor's requests and where its answers are ------------------------------------------------------


class Vendor:
    """One wire format: how to ask with tools, JSON or a limit, and how to read the answer back."""

    name: str
    model: str
    stop: str  # the finish reason of an answer that ended by itself
    length: str  # ... and of one cut by the output limit

    def path(self, stream: bool = False) -> str:
        raise NotImplementedError

    def body(self, text: str, **extra: Any) -> dict[str, Any]:
        raise NotImplementedError

    def tools(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def forced(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def json_mode(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    def limit(self, tokens: int) -> dict[str, Any]:
        raise NotImplementedError

    def stream_flag(self) -> dict[str, Any]:
        return {"stream": True}

    def after_tool_result(self, question: str, name: str, arguments: dict[str, Any], result: str) -> Any:
        raise NotImplementedError

    def arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def streamed_arguments(self, payloads: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def text(self, data: dict[str, Any]) -> str:
        raise NotImplementedError

    def streamed_text(self, payloads: list[Any]) -> str:
        raise NotImplementedError

    def finish(self, data: dict[str, Any]) -> str:
        raise NotImplementedError

    def output_tokens(self, data: dict[str, Any]) -> int:
        raise NotImplementedError

    def has_tool_call(self, data: dict[str, Any]) -> bool:
        raise NotImplementedError

    def streamed_tool_call(self, payloads: list[Any]) -> bool:
        raise NotImplementedError


class OpenAIChat(Vendor):
    name, model, stop, length = "openai", "gpt-4o-mini", "stop", "length"

    def path(self, stream: bool = False) -> str:
        return "/v1/chat/completions"

    def body(self, text: str, **extra: Any) -> dict[str, Any]:
        return {"model": self.model, "messages": [{"role": "user", "content": text}], **extra}

    def tools(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"tools": [{"type": "function", "function": {"name": name, "parameters": schema}}]}

    def forced(self, name: str) -> dict[str, Any]:
        return {"tool_choice": {"type": "function", "function": {"name": name}}}

    def json_mode(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        if schema is None:
            return {"response_format": {"type": "json_object"}}
        spec = {"name": "answer", "schema": schema, "strict": True}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}

    def limit(self, tokens: int) -> dict[str, Any]:
        return {"max_completion_tokens": tokens}

    def stream_flag(self) -> dict[str, Any]:
        return {"stream": True, "stream_options": {"include_usage": True}}

    def after_tool_result(self, question: str, name: str, arguments: dict[str, Any], result: str) -> Any:
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        return {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": result},
            ]
        }

    def arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        [call] = data["choices"][0]["message"]["tool_calls"]
        return dict(json.loads(call["function"]["arguments"]))

    def streamed_arguments(self, payloads: list[Any]) -> dict[str, Any]:
        fragments = [
            call["function"].get("arguments", "")
            for chunk in payloads
            if chunk["choices"]
            for call in chunk["choices"][0]["delta"].get("tool_calls") or []
        ]
        return dict(json.loads("".join(fragments)))

    def text(self, data: dict[str, Any]) -> str:
        return str(data["choices"][0]["message"]["content"])

    def streamed_text(self, payloads: list[Any]) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads if c["choices"])

    def finish(self, data: dict[str, Any]) -> str:
        return str(data["choices"][0]["finish_reason"])

    def output_tokens(self, data: dict[str, Any]) -> int:
        return int(data["usage"]["completion_tokens"])

    def has_tool_call(self, data: dict[str, Any]) -> bool:
        return bool(data["choices"][0]["message"].get("tool_calls"))

    def streamed_tool_call(self, payloads: list[Any]) -> bool:
        return any(c["choices"] and "tool_calls" in c["choices"][0]["delta"] for c in payloads)


class Anthropic(Vendor):
    name, model, stop, length = "anthropic", "claude-haiku-4-5", "end_turn", "max_tokens"

    def path(self, stream: bool = False) -> str:
        return "/v1/messages"

    def body(self, text: str, **extra: Any) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": text}],
            **extra,
        }

    def tools(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"tools": [{"name": name, "description": "A tool", "input_schema": schema}]}

    def forced(self, name: str) -> dict[str, Any]:
        return {"tool_choice": {"type": "tool", "name": name}}

    def json_mode(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        return {"output_config": {"format": {"type": "json_schema", "schema": schema or {"type": "object"}}}}

    def limit(self, tokens: int) -> dict[str, Any]:
        return {"max_tokens": tokens}

    def after_tool_result(self, question: str, name: str, arguments: dict[str, Any], result: str) -> Any:
        call = {"type": "tool_use", "id": "toolu_01", "name": name, "input": arguments}
        answer = {
            "type": "tool_result",
            "tool_use_id": "toolu_01",
            "content": [{"type": "text", "text": result}],
        }
        return {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": [call]},
                {"role": "user", "content": [answer]},
            ]
        }

    def arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        [block] = data["content"]
        assert block["type"] == "tool_use"
        return dict(block["input"])

    def streamed_arguments(self, payloads: list[Any]) -> dict[str, Any]:
        fragments = [p["delta"]["partial_json"] for p in payloads if p["type"] == "content_block_delta"]
        return dict(json.loads("".join(fragments)))

    def text(self, data: dict[str, Any]) -> str:
        return "".join(block["text"] for block in data["content"] if block["type"] == "text")

    def streamed_text(self, payloads: list[Any]) -> str:
        return "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")

    def finish(self, data: dict[str, Any]) -> str:
        return str(data["stop_reason"])

    def output_tokens(self, data: dict[str, Any]) -> int:
        return int(data["usage"]["output_tokens"])

    def has_tool_call(self, data: dict[str, Any]) -> bool:
        return any(block["type"] == "tool_use" for block in data["content"])

    def streamed_tool_call(self, payloads: list[Any]) -> bool:
        blocks = [p["content_block"] for p in payloads if p["type"] == "content_block_start"]
        return any(block["type"] == "tool_use" for block in blocks)


class Gemini(Vendor):
    name, model, stop, length = "gemini", "gemini-2.5-flash", "STOP", "MAX_TOKENS"
    THOUGHTS = 10  # gemini-2.5 thinks, out of the same output limit

    def path(self, stream: bool = False) -> str:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/{self.model}:{action}"

    def body(self, text: str, **extra: Any) -> dict[str, Any]:
        return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}

    def tools(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        # $ref and $defs need the JSON-schema field; Gemini's own OpenAPI-style schema for the rest.
        key, given = (
            ("parametersJsonSchema", schema) if "$defs" in schema else ("parameters", gemini_schema(schema))
        )
        return {"tools": [{"functionDeclarations": [{"name": name, key: given}]}]}

    def forced(self, name: str) -> dict[str, Any]:
        return {"toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}}

    def json_mode(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema is not None:
            config["responseSchema"] = gemini_schema(schema)
        return {"generationConfig": config}

    def limit(self, tokens: int) -> dict[str, Any]:
        return {"generationConfig": {"maxOutputTokens": tokens + self.THOUGHTS}}

    def stream_flag(self) -> dict[str, Any]:
        return {}

    def after_tool_result(self, question: str, name: str, arguments: dict[str, Any], result: str) -> Any:
        return {
            "contents": [
                {"role": "user", "parts": [{"text": question}]},
                {"role": "model", "parts": [{"functionCall": {"name": name, "args": arguments}}]},
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"name": name, "response": {"content": result}}}],
                },
            ]
        }

    def arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        [part] = data["candidates"][0]["content"]["parts"]
        return dict(part["functionCall"]["args"])

    def streamed_arguments(self, payloads: list[Any]) -> dict[str, Any]:
        [chunk] = payloads  # a function call comes whole, in one chunk
        return self.arguments(chunk)

    def text(self, data: dict[str, Any]) -> str:
        return "".join(part.get("text", "") for part in data["candidates"][0]["content"].get("parts", []))

    def streamed_text(self, payloads: list[Any]) -> str:
        return "".join(self.text(chunk) for chunk in payloads)

    def finish(self, data: dict[str, Any]) -> str:
        return str(data["candidates"][0]["finishReason"])

    def output_tokens(self, data: dict[str, Any]) -> int:
        return int(data["usageMetadata"]["candidatesTokenCount"])

    def has_tool_call(self, data: dict[str, Any]) -> bool:
        return any("functionCall" in part for part in data["candidates"][0]["content"].get("parts", []))

    def streamed_tool_call(self, payloads: list[Any]) -> bool:
        return any(self.has_tool_call(chunk) for chunk in payloads)


class Responses(Vendor):
    name, model, stop, length = "responses", "gpt-4o-mini", "completed", "incomplete"

    def path(self, stream: bool = False) -> str:
        return "/v1/responses"

    def body(self, text: str, **extra: Any) -> dict[str, Any]:
        return {"model": self.model, "input": text, **extra}

    def tools(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"tools": [{"type": "function", "name": name, "parameters": schema, "strict": True}]}

    def forced(self, name: str) -> dict[str, Any]:
        return {"tool_choice": {"type": "function", "name": name}}

    def json_mode(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        if schema is None:
            return {"text": {"format": {"type": "json_object"}}}
        return {
            "text": {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}}
        }

    def limit(self, tokens: int) -> dict[str, Any]:
        return {"max_output_tokens": max(tokens, 16)}

    def after_tool_result(self, question: str, name: str, arguments: dict[str, Any], result: str) -> Any:
        return {
            "input": [
                {"role": "user", "content": question},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": name,
                    "arguments": json.dumps(arguments),
                },
                {"type": "function_call_output", "call_id": "call_1", "output": result},
            ]
        }

    def arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        [call] = [item for item in data["output"] if item["type"] == "function_call"]
        return dict(json.loads(call["arguments"]))

    def streamed_arguments(self, payloads: list[Any]) -> dict[str, Any]:
        deltas = [p["delta"] for p in payloads if p["type"] == "response.function_call_arguments.delta"]
        [done] = [p for p in payloads if p["type"] == "response.function_call_arguments.done"]
        assert "".join(deltas) == done["arguments"]
        return dict(json.loads(done["arguments"]))

    def text(self, data: dict[str, Any]) -> str:
        return "".join(
            part["text"]
            for item in data["output"]
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )

    def streamed_text(self, payloads: list[Any]) -> str:
        return "".join(p["delta"] for p in payloads if p["type"] == "response.output_text.delta")

    def finish(self, data: dict[str, Any]) -> str:
        return str(data["status"])

    def output_tokens(self, data: dict[str, Any]) -> int:
        return int(data["usage"]["output_tokens"])

    def has_tool_call(self, data: dict[str, Any]) -> bool:
        return any(item["type"] == "function_call" for item in data["output"])

    def streamed_tool_call(self, payloads: list[Any]) -> bool:
        return any(p["type"].startswith("response.function_call") for p in payloads)


VENDORS: dict[str, Vendor] = {v.name: v for v in (OpenAIChat(), Anthropic(), Gemini(), Responses())}
ALL = pytest.mark.parametrize("vendor", list(VENDORS.values()), ids=list(VENDORS))
Post = Callable[..., dict[str, Any]]


@pytest.fixture
def post(client: httpx.Client) -> Post:
    def send(vendor: Vendor, body: dict[str, Any], stream: bool = False) -> Any:
        response = client.post(vendor.path(stream), json=body)
        assert response.status_code == 200, response.text
        return sse_payloads(response.text) if stream else response.json()

    return send


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    """Request fields together; two generationConfig parts are merged rather than replaced."""
    body: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "generationConfig" and key in body:
                body[key] = {**body[key], **value}
            else:
                body[key] = value
    return body


# --- tool arguments ------------------------------------------------------------------------------------------


@ALL
@pytest.mark.parametrize("stream", [False, True])
def test_tool_arguments_validate_against_a_schema_that_requires_city(
    post: Post, vendor: Vendor, stream: bool
) -> None:
    body = vendor.body(WEATHER_QUESTION, **vendor.tools("get_weather", CITY_SCHEMA))
    data = post(vendor, body | (vendor.stream_flag() if stream else {}), stream=stream)
    arguments = vendor.streamed_arguments(data) if stream else vendor.arguments(data)
    validate(arguments, CITY_SCHEMA)
    assert arguments["city"] == "Rome"  # the place the question is about
    assert arguments["unit"] == "celsius"  # an enum's first value
    assert "days" not in arguments  # optional: left out


@ALL
def test_tool_arguments_fill_nested_objects_refs_arrays_enums_and_bounds(post: Post, vendor: Vendor) -> None:
    ask = "Plan a trip from Rome to Berlin, please."
    data = post(vendor, vendor.body(ask, **vendor.tools("plan_trip", TRIP_SCHEMA)))  # "plan" names the tool
    arguments = vendor.arguments(data)
    validate(arguments, TRIP_SCHEMA)
    assert arguments["travellers"] == 2 and arguments["mode"] == "train"
    assert len(arguments["trip"]["dates"]) == 2 and arguments["trip"]["stops"][0]["nights"] == 1
    assert (arguments["trip"]["from_city"], arguments["trip"]["to_city"]) == ("Rome", "Berlin")


@ALL
def test_a_forced_tool_gets_arguments_for_its_own_schema_whatever_the_question(
    post: Post, vendor: Vendor
) -> None:
    body = merged(
        vendor.body(QUESTION), vendor.tools("get_weather", CITY_SCHEMA), vendor.forced("get_weather")
    )
    arguments = vendor.arguments(post(vendor, body))
    validate(arguments, CITY_SCHEMA)
    assert arguments["city"] == "Paris"  # nothing place-like in the question: the fake's old default


@ALL
def test_a_schema_with_an_optional_location_keeps_the_old_paris_answer(post: Post, vendor: Vendor) -> None:
    schema = {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}}}
    data = post(vendor, vendor.body("What is the weather in Paris?", **vendor.tools("get_weather", schema)))
    assert vendor.arguments(data) == {"location": "Paris"}


def test_the_same_tool_request_gets_the_same_arguments(post: Post) -> None:
    vendor = VENDORS["openai"]
    body = vendor.body("Plan a trip to Lisbon", **vendor.tools("plan_trip", TRIP_SCHEMA))
    first, second = post(vendor, body), post(vendor, body)
    assert vendor.arguments(first) == vendor.arguments(second)
    assert first["usage"] == second["usage"]


# --- JSON when JSON is asked for ----------------------------------------------------------------------------


@ALL
@pytest.mark.parametrize("stream", [False, True])
def test_json_mode_answers_valid_json(post: Post, vendor: Vendor, stream: bool) -> None:
    body = merged(vendor.body(QUESTION), vendor.json_mode(None), vendor.stream_flag() if stream else {})
    data = post(vendor, body, stream=stream)
    text = vendor.streamed_text(data) if stream else vendor.text(data)
    value = json.loads(text)
    assert isinstance(value, dict)
    assert value["answer"].startswith(f"This is a fake answer from {vendor.model}.")


@ALL
def test_a_json_schema_answer_is_an_instance_of_the_schema(post: Post, vendor: Vendor) -> None:
    data = post(vendor, merged(vendor.body(WEATHER_QUESTION), vendor.json_mode(ANSWER_SCHEMA)))
    value = json.loads(vendor.text(data))
    validate(value, ANSWER_SCHEMA)
    assert value["city"] == "Rome" and "fake answer" in value["answer"]
    assert vendor.finish(data) == vendor.stop
    assert vendor.output_tokens(data) == len(vendor.text(data).split())


@ALL
def test_json_cut_by_the_output_limit_stays_valid_json_of_whole_sentences(post: Post, vendor: Vendor) -> None:
    full = post(vendor, merged(vendor.body(QUESTION), vendor.json_mode(None)))
    cut = post(vendor, merged(vendor.body(QUESTION), vendor.json_mode(None), vendor.limit(12)))
    answer = json.loads(vendor.text(cut))["answer"]
    assert answer == f"This is a fake answer from {vendor.model}."
    assert json.loads(vendor.text(full))["answer"].startswith(answer + " ")
    assert vendor.finish(cut) == vendor.length
    assert vendor.output_tokens(cut) == len(vendor.text(cut).split())


def test_the_gateways_anthropic_json_tool_gets_the_structured_answer(post: Post) -> None:
    vendor = VENDORS["anthropic"]
    for schema in ({"type": "object", "additionalProperties": True, "properties": {}}, ANSWER_SCHEMA):
        body = merged(
            vendor.body(WEATHER_QUESTION),
            vendor.tools("json_tool_call", schema),
            vendor.forced("json_tool_call"),
        )
        value = vendor.arguments(post(vendor, body))
        validate(value, schema)
        assert "fake answer" in value["answer"]


# --- whole sentences within max_tokens ----------------------------------------------------------------------


@ALL
@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_cut_by_max_tokens_ends_at_the_last_whole_sentence(
    post: Post, vendor: Vendor, stream: bool
) -> None:
    full = vendor.text(post(vendor, vendor.body(QUESTION)))
    assert full.endswith(SENTENCE_ENDS) and len(full.split()) > 16
    body = merged(vendor.body(QUESTION), vendor.limit(12), vendor.stream_flag() if stream else {})
    data = post(vendor, body, stream=stream)
    text = vendor.streamed_text(data) if stream else vendor.text(data)
    assert text == f"This is a fake answer from {vendor.model}."  # 7 words: the second sentence has 12
    assert text.endswith(SENTENCE_ENDS) and full.startswith(text + " ")
    final = data[-1] if stream else data
    if vendor.name == "responses":
        final = final["response"] if stream else final
    if vendor.name == "anthropic" and stream:
        assert final["type"] == "message_stop"
        final = {"stop_reason": data[-2]["delta"]["stop_reason"], "usage": data[-2]["usage"]}
    if vendor.name == "openai" and stream:
        final = {"choices": data[-2]["choices"], "usage": data[-1]["usage"]}  # the finish, then the usage
    assert vendor.finish(final) == vendor.length
    assert vendor.output_tokens(final) == len(text.split())  # the reported tokens are the words sent


def test_a_custom_answer_is_cut_at_its_sentences_too(post: Post, upstream: FakeUpstreamProcess) -> None:
    vendor = VENDORS["openai"]
    upstream.control(model=vendor.model, answer="One two three. Four five six seven! Eight nine ten eleven?")
    for limit, expected in (
        (3, "One two three."),
        (8, "One two three. Four five six seven!"),
        (2, "One two"),
    ):
        data = post(vendor, vendor.body(QUESTION, max_tokens=limit))
        assert (vendor.text(data), vendor.finish(data)) == (expected, "length")
        assert vendor.output_tokens(data) == len(expected.split())


def test_padding_for_a_chunks_rule_is_whole_sentences(post: Post, upstream: FakeUpstreamProcess) -> None:
    vendor = VENDORS["openai"]
    upstream.control(model=vendor.model, chunks=40)
    text = vendor.text(post(vendor, vendor.body(QUESTION)))
    assert len(text.split()) >= 40 and text.endswith(".")
    assert "lorem" not in text


# --- after a tool result ------------------------------------------------------------------------------------


@ALL
@pytest.mark.parametrize("stream", [False, True])
def test_after_a_tool_result_the_answer_is_text_that_uses_it_and_stops(
    post: Post, vendor: Vendor, stream: bool
) -> None:
    turns = vendor.after_tool_result(
        WEATHER_QUESTION, "get_weather", {"city": "Rome", "unit": "celsius"}, TOOL_RESULT
    )
    body = merged(
        vendor.body(""),
        turns,
        vendor.tools("get_weather", CITY_SCHEMA),
        vendor.stream_flag() if stream else {},
    )
    data = post(vendor, body, stream=stream)
    if stream:
        text = vendor.streamed_text(data)
        assert not vendor.streamed_tool_call(data)
    else:
        text = vendor.text(data)
        assert not vendor.has_tool_call(data)
        assert vendor.finish(data) == vendor.stop
    assert text == (
        f'This is a fake answer from {vendor.model}. Based on the get_weather result: "{TOOL_RESULT}".'
    )


@ALL
def test_after_a_tool_result_json_mode_still_answers_json(post: Post, vendor: Vendor) -> None:
    turns = vendor.after_tool_result(
        WEATHER_QUESTION, "get_weather", {"city": "Rome", "unit": "celsius"}, TOOL_RESULT
    )
    body = merged(
        vendor.body(""), turns, vendor.tools("get_weather", CITY_SCHEMA), vendor.json_mode(ANSWER_SCHEMA)
    )
    data = post(vendor, body)
    value = json.loads(vendor.text(data))
    validate(value, ANSWER_SCHEMA)
    assert TOOL_RESULT in value["answer"] and vendor.finish(data) == vendor.stop


def test_parallel_tool_results_are_each_used(post: Post) -> None:
    vendor = VENDORS["openai"]
    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": "{}"}}
        for i, name in enumerate(("get_weather", "get_time"))
    ]
    messages = [
        {"role": "user", "content": "Weather and time in Rome?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_0", "content": TOOL_RESULT},
        {"role": "tool", "tool_call_id": "call_1", "content": "It is 10:00.\n\nCET"},
    ]
    data = post(vendor, {"model": vendor.model, "messages": messages})
    assert vendor.text(data).endswith(
        f'Based on the get_weather result: "{TOOL_RESULT}". Based on the get_time result: "It is 10:00. CET".'
    )


# --- the schema instances themselves ------------------------------------------------------------------------


HINTS = Hints(places=("Rome",), query="What is the weather in Rome?", answer="This is an answer.")
SCHEMAS: list[dict[str, Any]] = [
    CITY_SCHEMA,
    TRIP_SCHEMA,
    ANSWER_SCHEMA,
    {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 7},
    {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 2},
    {"type": "number", "minimum": -3.5, "maximum": -1.25},
    {"type": "integer", "multipleOf": 5, "minimum": 7},
    {"type": "number", "multipleOf": 0.25, "minimum": 1.1, "maximum": 2},
    {"type": ["string", "null"], "minLength": 12, "maxLength": 14},
    {"type": "string", "maxLength": 3},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 2, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}, {"const": 3}], "minItems": 3},
    {"type": "array", "maxItems": 0},
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "null"}}, "minProperties": 2},
    {"type": "object", "required": ["anything"], "additionalProperties": {"type": "integer"}},
    {"allOf": [{"properties": {"x": {"type": "integer"}}, "required": ["x"]}, {"required": ["y"]}]},
    {
        "oneOf": [{"type": "null"}, {"$ref": "#/$defs/C"}],
        "$defs": {"C": {"type": "object", "required": ["c"]}},
    },
    {
        "$ref": "#/definitions/Node",
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"items": {"$ref": "#/definitions/Node"}},
                },
                "required": ["name", "children"],
            }
        },
    },
    {
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
            "site": {"type": "string", "format": "uri"},
        },
        "required": ["email", "when", "id", "site"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
def test_every_instance_validates_against_its_schema(schema: dict[str, Any]) -> None:
    value = instance(copy.deepcopy(schema), HINTS)
    validate(value, schema)
    assert instance(schema, HINTS) == value  # deterministic


HOSTILE: list[Any] = [
    [],
    "object",
    {"type": 5, "properties": [1, 2], "required": "city"},
    {"type": "object", "required": 3, "properties": {"a": None}},
    {"type": "array", "minItems": 10**9, "items": True},
    {"type": "string", "minLength": 10**9},
    {"type": "number", "minimum": 1e308, "multipleOf": 1e-308},
    {"enum": [], "anyOf": "x", "allOf": [None, 3], "oneOf": []},
    {"$ref": "#"},
    {"$ref": "#/nowhere/at/all"},
    {"$ref": "https://example.com/schema.json"},
    {"anyOf": [{"anyOf": [{"anyOf": [{"$ref": "#"}]}]}]},
    {"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]},
    {"type": "array", "minItems": 100, "items": {"type": "array", "minItems": 100, "items": {"$ref": "#"}}},
    {"allOf": [{"$ref": "#"}, {"anyOf": [{"$ref": "#"}, {"oneOf": [{"$ref": "#"}]}]}]},
]


@pytest.mark.parametrize("schema", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_a_broken_or_hostile_schema_never_breaks_the_fake(schema: Any) -> None:
    started = time.monotonic()
    value = instance(schema, HINTS)
    assert len(json.dumps(value)) < 100_000  # capped: no billion items, no gigabyte string
    assert time.monotonic() - started < 1


def test_a_tool_with_a_strange_schema_or_name_still_gets_an_answer(client: httpx.Client) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": HOSTILE[4]}}]
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": WEATHER_QUESTION}],
        "tools": tools,
    }
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    body = {**body, "tool_choice": {"type": "function", "function": {"name": ["not", "a", "name"]}}}
    assert client.post("/v1/chat/completions", json=body).status_code == 200


def test_gemini_upper_case_types_give_the_same_instances() -> None:
    for schema in (CITY_SCHEMA, ANSWER_SCHEMA):
        value = instance(gemini_schema(schema), HINTS)
        validate(value, lower_types(gemini_schema(schema)))
        assert value == instance(schema, HINTS)


def test_strings_follow_the_property_name() -> None:
    schema = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("city", "searchQuery", "summary", "country", "other")},
        "required": ["city", "searchQuery", "summary", "country", "other"],
    }
    assert instance(schema, HINTS) == {
        "city": "Rome",
        "searchQuery": "What is the weather in Rome?",
        "summary": "This is an answer.",
        "country": "France",
        "other": "example",
    }


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("What is the weather in Paris?", "Paris"),
        ("what's it like in New York today?", "New York"),
        ("Tell me about Lisbon.", "Lisbon"),
        ("In Tokyo, is it raining?", "Tokyo"),
        ("Is it cold? Maybe.", "Paris"),
        ("From Rome to Berlin", "Rome"),
        ("weather?", "Paris"),
    ],
)
def test_the_place_comes_from_the_users_text(text: str, place: str) -> None:
    assert place_in(text) == place
