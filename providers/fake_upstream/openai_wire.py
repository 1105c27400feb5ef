"""OpenAI Chat Completions wire format, and DeepSeek's variant of it."""

import uuid
from typing import Any, ClassVar

from providers.fake_upstream.answers import (
    Answer,
    Prompt,
    ResponseFormat,
    ToolResult,
    content_text,
    last_text,
)
from providers.fake_upstream.rules import Fault
from providers.fake_upstream.wire import (
    Headers,
    JsonObject,
    StreamPlan,
    WireFormat,
    error_defaults,
    new_id,
    optional_int,
    require_list,
    require_model,
    retry_after_headers,
    sse_data,
    unix_now,
)

FINISH_REASONS = {"stop": "stop", "length": "length", "tool": "tool_calls"}
DONE = b"data: [DONE]\n\n"


class OpenAIFormat(WireFormat):
    name = "openai"
    fingerprint = "fp_fake0upstream"
    message_extras: ClassVar[JsonObject] = {"refusal": None, "annotations": []}
    first_delta_extras: ClassVar[JsonObject] = {"refusal": None}
    response_extras: ClassVar[JsonObject] = {"service_tier": "default"}
    stream_preamble: ClassVar[list[bytes]] = []
    # status -> (type, code, message)
    errors: ClassVar[dict[int, tuple[str, str | None, str]]] = {
        400: ("invalid_request_error", None, "Invalid request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        403: ("permission_error", None, "You are not allowed to sample from this model."),
        404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist."),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached for {model} on requests per min."),
        500: ("server_error", None, "The server had an error while processing your request."),
        503: ("service_unavailable_error", "server_is_overloaded", "The server is overloaded."),
    }

    def new_response_id(self) -> str:
        return new_id("chatcmpl-", 29)

    def parse(self, body: JsonObject, path_model: str | None) -> Prompt:
        model = require_model(body)
        messages = require_list(body, "messages")
        functions = [
            tool["function"]
            for tool in body.get("tools") or []
            if isinstance(tool, dict)
            and isinstance(tool.get("function"), dict)
            and isinstance(tool["function"].get("name"), str)
        ]
        tool_names = [function["name"] for function in functions]
        choice = body.get("tool_choice")
        forced: str | None = None
        if choice == "required" and tool_names:
            forced = tool_names[0]
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            forced = choice["function"].get("name")
        max_tokens = optional_int(body, "max_completion_tokens")
        if max_tokens is None:
            max_tokens = optional_int(body, "max_tokens")
        stream = body.get("stream") is True
        stream_options = body.get("stream_options")
        user_texts = [
            content_text(m.get("content"), nested=False) for m in messages if m.get("role") == "user"
        ]
        return Prompt(
            model=model,
            message_texts=[content_text(m.get("content")) for m in messages],
            last_user_text=last_text(user_texts),
            last_is_user=messages[-1].get("role") == "user",
            tool_names=tool_names,
            tool_schemas={function["name"]: function.get("parameters") for function in functions},
            response_format=response_format(body.get("response_format")),
            tool_results=_tool_results(messages),
            forced_tool=forced,
            tools_disabled=choice == "none",
            max_tokens=max_tokens,
            stream=stream,
            include_usage=stream
            and isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True,
        )

    def usage(self, answer: Answer) -> JsonObject:
        completion = answer.output_tokens + answer.reasoning_tokens
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": answer.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": answer.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def response_headers(self) -> Headers:
        return [(b"x-request-id", new_id("req_", 32).encode())]

    def response(self, answer: Answer, prompt: Prompt) -> tuple[JsonObject, Headers]:
        message: JsonObject = {"role": "assistant", "content": answer.text, **self.message_extras}
        if answer.is_tool_call:
            message["content"] = None
            message["tool_calls"] = [self._tool_call(answer, answer.arguments_json)]
        payload = {
            "id": self.new_response_id(),
            "object": "chat.completion",
            "created": unix_now(),
            "model": answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH_REASONS[answer.finish],
                }
            ],
            "usage": self.usage(answer),
            **self.response_extras,
            "system_fingerprint": self.fingerprint,
        }
        return payload, self.response_headers()

    def stream(self, answer: Answer, prompt: Prompt) -> StreamPlan:
        envelope = {
            "id": self.new_response_id(),
            "object": "chat.completion.chunk",
            "created": unix_now(),
            "model": answer.model,
            "system_fingerprint": self.fingerprint,
        }
        # With include_usage, every chunk but the usage one carries "usage": null (per the spec).
        usage_null: JsonObject = {"usage": None} if prompt.include_usage else {}

        def chunk(delta: JsonObject, finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return sse_data({**envelope, "choices": [choice], **usage_null})

        if answer.is_tool_call:
            first = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"index": 0, **self._tool_call(answer, "")}],
                **self.first_delta_extras,
            }
            content = [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in answer.pieces
            ]
        else:
            first = {"role": "assistant", "content": "", **self.first_delta_extras}
            content = [chunk({"content": piece}) for piece in answer.pieces]
        tail = [chunk({}, FINISH_REASONS[answer.finish])]
        if prompt.include_usage:
            tail.append(sse_data({**envelope, "choices": [], "usage": self.usage(answer)}))
        tail.append(DONE)
        return StreamPlan(head=[*self.stream_preamble, chunk(first)], content=content, tail=tail)

    def error(self, status: int, message: str, model: str, fault: Fault) -> tuple[JsonObject, Headers]:
        error_type, code, default_message = error_defaults(self.errors, status)
        body = {
            "error": {
                "message": message or default_message.format(model=model),
                "type": fault.error_type or error_type,
                "param": None,
                "code": fault.error_code or code,
            }
        }
        return body, self.response_headers() + retry_after_headers(fault)

    @staticmethod
    def _tool_call(answer: Answer, arguments: str) -> dict[str, Any]:
        return {
            "id": new_id("call_", 24),
            "type": "function",
            "function": {"name": answer.tool_name, "arguments": arguments},
        }


def response_format(spec: Any) -> ResponseFormat | None:
    """Chat Completions' `response_format`, or the Responses API's `text.format` (the schema one level up)."""
    if not isinstance(spec, dict) or spec.get("type") not in ("json_object", "json_schema"):
        return None
    if spec["type"] == "json_object":
        return ResponseFormat("json_object")
    inner = spec.get("json_schema")
    return ResponseFormat("json_schema", (inner if isinstance(inner, dict) else spec).get("schema"))


def _tool_results(messages: list[JsonObject]) -> list[ToolResult]:
    """The results of the trailing "tool" (or legacy "function") messages, named after their calls."""
    names = {
        str(call.get("id")): str(call["function"].get("name") or "")
        for message in messages
        if message.get("role") == "assistant" and isinstance(message.get("tool_calls"), list)
        for call in message["tool_calls"]
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    }
    results: list[ToolResult] = []
    for message in reversed(messages):
        if message.get("role") not in ("tool", "function"):
            break
        name = message.get("name") or names.get(str(message.get("tool_call_id")), "")
        results.append(ToolResult(str(name), content_text(message.get("content"))))
    return results[::-1]


class DeepSeekFormat(OpenAIFormat):
    """OpenAI's shape with DeepSeek's ids, cache-hit usage fields, keep-alive comments and error names."""

    name = "deepseek"
    fingerprint = "fp_fake0upstream_prod0820_fp8_kvcache"
    message_extras: ClassVar[JsonObject] = {}
    first_delta_extras: ClassVar[JsonObject] = {}
    response_extras: ClassVar[JsonObject] = {}
    stream_preamble: ClassVar[list[bytes]] = [b": keep-alive\n\n"]
    errors: ClassVar[dict[int, tuple[str, str | None, str]]] = {
        400: ("invalid_request_error", "invalid_request_error", "Invalid Format"),
        401: (
            "authentication_error",
            "invalid_request_error",
            "Authentication Fails, Your api key is invalid",
        ),
        402: ("invalid_request_error", "invalid_request_error", "Insufficient Balance"),
        422: ("invalid_request_error", "invalid_request_error", "Invalid Parameters"),
        429: ("rate_limit_error", "rate_limit_error", "Rate Limit Reached"),
        500: ("server_error", "server_error", "Server Error"),
        503: ("server_error", "server_overloaded", "Server Overloaded"),
    }

    def new_response_id(self) -> str:
        return str(uuid.uuid4())

    def response_headers(self) -> Headers:
        return []

    def usage(self, answer: Answer) -> JsonObject:
        completion = answer.output_tokens + answer.reasoning_tokens
        usage: JsonObject = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": answer.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": answer.cached_tokens},
            "prompt_cache_hit_tokens": answer.cached_tokens,
            "prompt_cache_miss_tokens": answer.prompt_tokens - answer.cached_tokens,
        }
        if answer.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": answer.reasoning_tokens}
        return usage
