"""Anthropic Messages wire format: content blocks, named stream events, 529 overload errors."""

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
    WireError,
    WireFormat,
    error_defaults,
    new_id,
    optional_int,
    require_list,
    require_model,
    retry_after_headers,
    sse_event,
)

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}
ROLES = {"user", "assistant"}


class AnthropicFormat(WireFormat):
    name = "anthropic"
    # status -> (error.type, message)
    errors: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("invalid_request_error", "Invalid request."),
        401: ("authentication_error", "invalid x-api-key"),
        402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
        403: ("permission_error", "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "model: {model}"),
        409: ("conflict_error", "Conflict."),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
        500: ("api_error", "Internal server error"),
        504: ("timeout_error", "Request timed out"),
        529: ("overloaded_error", "Overloaded"),
    }

    def parse(self, body: JsonObject, path_model: str | None) -> Prompt:
        model = require_model(body)
        if "max_tokens" not in body:
            raise WireError("max_tokens: Field required", param="max_tokens")
        max_tokens = optional_int(body, "max_tokens")
        messages = require_list(body, "messages")
        for index, message in enumerate(messages):
            if message.get("role") not in ROLES:
                raise WireError(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        system = content_text(body.get("system"))
        tools = [
            tool
            for tool in body.get("tools") or []
            if isinstance(tool, dict) and isinstance(tool.get("name"), str)
        ]
        tool_names = [tool["name"] for tool in tools]
        choice = body.get("tool_choice")
        choice_type = choice.get("type") if isinstance(choice, dict) else None
        forced: str | None = None
        if choice_type == "any" and tool_names:
            forced = tool_names[0]
        elif choice_type == "tool" and isinstance(choice, dict):
            forced = choice.get("name")
        user_texts = [content_text(m.get("content"), nested=False) for m in messages if m["role"] == "user"]
        return Prompt(
            model=model,
            message_texts=[system] * bool(system) + [content_text(m.get("content")) for m in messages],
            last_user_text=last_text(user_texts),
            last_is_user=messages[-1]["role"] == "user" and bool(user_texts[-1]),
            tool_names=tool_names,
            tool_schemas={tool["name"]: tool.get("input_schema") for tool in tools},
            response_format=_response_format(body),
            tool_results=_tool_results(messages),
            forced_tool=forced,
            tools_disabled=choice_type == "none",
            max_tokens=max_tokens,
            stream=body.get("stream") is True,
        )

    def usage(self, answer: Answer, output_tokens: int) -> JsonObject:
        return {
            "input_tokens": answer.prompt_tokens - answer.cached_tokens - answer.cache_write_tokens,
            "cache_creation_input_tokens": answer.cache_write_tokens,
            "cache_read_input_tokens": answer.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": answer.cache_write_tokens - answer.cache_write_1h_tokens,
                "ephemeral_1h_input_tokens": answer.cache_write_1h_tokens,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def response(self, answer: Answer, prompt: Prompt) -> tuple[JsonObject, Headers]:
        if answer.is_tool_call:
            content = [self._tool_block(answer) | {"input": answer.tool_arguments}]
        else:
            content = [{"type": "text", "text": answer.text}] if answer.text else []
        payload = self._message(answer, content) | {
            "stop_reason": STOP_REASONS[answer.finish],
            "usage": self.usage(answer, self._output_tokens(answer)),
        }
        return payload, self._headers()

    def stream(self, answer: Answer, prompt: Prompt) -> StreamPlan:
        start = self._message(answer, []) | {"stop_reason": None, "usage": self.usage(answer, 1)}
        head = [sse_event({"type": "message_start", "message": start})]
        if answer.is_tool_call:
            block = self._tool_block(answer) | {"input": {}}
            delta_type, delta_key = "input_json_delta", "partial_json"
        else:
            block = {"type": "text", "text": ""}
            delta_type, delta_key = "text_delta", "text"
        head.append(sse_event({"type": "content_block_start", "index": 0, "content_block": block}))
        head.append(sse_event({"type": "ping"}))
        content = [
            sse_event(
                {"type": "content_block_delta", "index": 0, "delta": {"type": delta_type, delta_key: piece}}
            )
            for piece in answer.pieces
        ]
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": STOP_REASONS[answer.finish], "stop_sequence": None},
            "usage": {"output_tokens": self._output_tokens(answer)},
        }
        tail = [
            sse_event({"type": "content_block_stop", "index": 0}),
            sse_event(message_delta),
            sse_event({"type": "message_stop"}),
        ]
        return StreamPlan(head=head, content=content, tail=tail)

    def error(self, status: int, message: str, model: str, fault: Fault) -> tuple[JsonObject, Headers]:
        error_type, default_message = error_defaults(self.errors, status)
        request_id = new_id("req_011C", 20)
        body = {
            "type": "error",
            "error": {
                "type": fault.error_type or error_type,
                "message": message or default_message.format(model=model),
            },
            "request_id": request_id,
        }
        return body, [(b"request-id", request_id.encode()), *retry_after_headers(fault)]

    @staticmethod
    def _output_tokens(answer: Answer) -> int:
        # Thinking tokens are inside output_tokens; Anthropic has no separate count.
        return answer.output_tokens + answer.reasoning_tokens

    @staticmethod
    def _message(answer: Answer, content: list[JsonObject]) -> JsonObject:
        return {
            "id": new_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
        }

    @staticmethod
    def _tool_block(answer: Answer) -> JsonObject:
        return {"type": "tool_use", "id": new_id("toolu_01", 22), "name": answer.tool_name}

    @staticmethod
    def _headers() -> Headers:
        return [(b"request-id", new_id("req_011C", 20).encode())]


def _response_format(body: JsonObject) -> ResponseFormat | None:
    """Structured outputs: `output_config.format` (or the beta's `output_format`) of type json_schema."""
    config = body.get("output_config")
    spec: Any = config.get("format") if isinstance(config, dict) else None
    if spec is None:
        spec = body.get("output_format")
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        return ResponseFormat("json_schema", spec.get("schema"))
    return None


def _tool_results(messages: list[JsonObject]) -> list[ToolResult]:
    """The tool_result blocks of the last message, named after the tool_use blocks they answer."""
    last = messages[-1]
    if last["role"] != "user" or not isinstance(last.get("content"), list):
        return []
    names = {
        str(block.get("id")): str(block.get("name") or "")
        for message in messages
        if message["role"] == "assistant" and isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_use"
    }
    return [
        ToolResult(names.get(str(block.get("tool_use_id")), ""), content_text(block.get("content")))
        for block in last["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
