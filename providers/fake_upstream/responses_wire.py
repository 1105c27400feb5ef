"""OpenAI Responses wire format (POST /v1/responses): input items, flat tools, output items, typed events."""

import itertools
import random
import string
from dataclasses import dataclass, field
from typing import Any

from providers.fake_upstream.answers import Answer, Prompt, ToolResult, content_text, last_text
from providers.fake_upstream.openai_wire import OpenAIFormat, response_format
from providers.fake_upstream.wire import (
    Headers,
    JsonObject,
    StreamPlan,
    WireError,
    new_id,
    optional_int,
    require_model,
    sse_event,
    unix_now,
)

MIN_OUTPUT_TOKENS = 16  # the API refuses a smaller max_output_tokens
ROLES = frozenset({"user", "assistant", "system", "developer"})
CALL_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(slots=True)
class ResponsesPrompt(Prompt):
    """A Responses request: a Response repeats most request fields back, so they travel with the prompt."""

    echo: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Ids:
    """Drawn once per answer, so the stream's items and the final Response agree."""

    response: str
    reasoning: str
    message: str
    function_call: str
    call: str
    created_at: int


class ResponsesFormat(OpenAIFormat):
    """Shares the Chat Completions error envelope and request-id header; everything else is its own."""

    name = "openai-responses"

    def parse(self, body: JsonObject, path_model: str | None) -> Prompt:
        model = require_model(body)
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise WireError("Invalid type for 'instructions': expected a string.", param="instructions")
        items = _input_items(body.get("input"))
        tools = body.get("tools") or []
        if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
            raise WireError("Invalid type for 'tools': expected an array of objects.", param="tools")
        functions = [tool for tool in tools if tool.get("type") == "function" and tool.get("name")]
        tool_names = [str(tool["name"]) for tool in functions]
        choice = body.get("tool_choice", "auto")
        forced: str | None = None
        if choice == "required" and tool_names:
            forced = tool_names[0]
        elif isinstance(choice, dict) and choice.get("type") == "function":
            forced = choice.get("name")
        max_tokens = optional_int(body, "max_output_tokens")
        if max_tokens is not None and max_tokens < MIN_OUTPUT_TOKENS:
            raise WireError(
                "Invalid 'max_output_tokens': integer below minimum value. "
                f"Expected a value >= {MIN_OUTPUT_TOKENS}, but got {max_tokens} instead.",
                param="max_output_tokens",
            )
        texts, user_texts = [instructions] if instructions else [], []
        for item in items:
            kind = item.get("type", "message")
            if kind == "message":
                texts.append(content_text(item.get("content")))
                if item.get("role") == "user":
                    user_texts.append(content_text(item.get("content"), nested=False))
            elif kind == "function_call":
                texts.append(str(item.get("arguments") or ""))
            elif kind == "function_call_output":
                texts.append(content_text(item.get("output")))
        last = items[-1]
        return ResponsesPrompt(
            model=model,
            message_texts=texts,
            last_user_text=last_text(user_texts),
            last_is_user=last.get("type", "message") == "message" and last.get("role") == "user",
            tool_names=tool_names,
            tool_schemas={str(tool["name"]): tool.get("parameters") for tool in functions},
            response_format=response_format(_object(body, "text").get("format")),
            tool_results=_tool_results(items),
            forced_tool=forced,
            tools_disabled=choice == "none",
            max_tokens=max_tokens,
            stream=body.get("stream") is True,
            echo=_echo(body, instructions, max_tokens, tools, choice),
        )

    def usage(self, answer: Answer) -> JsonObject:
        output = answer.output_tokens + answer.reasoning_tokens
        return {
            "input_tokens": answer.prompt_tokens,
            "input_tokens_details": {
                "cached_tokens": answer.cached_tokens,
                "cache_write_tokens": answer.cache_write_tokens,
            },
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": answer.reasoning_tokens},
            "total_tokens": answer.prompt_tokens + output,
        }

    def response(self, answer: Answer, prompt: Prompt) -> tuple[JsonObject, Headers]:
        ids = _new_ids()
        return self._response(answer, prompt, ids, final=True), self.response_headers()

    def stream(self, answer: Answer, prompt: Prompt) -> StreamPlan:
        ids = _new_ids()
        sequence = itertools.count()

        def event(kind: str, **fields: Any) -> bytes:
            return sse_event({"type": kind, "sequence_number": next(sequence), **fields})

        opening = self._response(answer, prompt, ids, final=False)
        head = [event("response.created", response=opening), event("response.in_progress", response=opening)]
        index = 0
        if answer.reasoning_tokens:
            reasoning = _reasoning_item(ids)
            head.append(event("response.output_item.added", output_index=0, item=reasoning))
            head.append(event("response.output_item.done", output_index=0, item=reasoning))
            index = 1
        if answer.is_tool_call:
            at: JsonObject = {"item_id": ids.function_call, "output_index": index}
            head.append(
                event("response.output_item.added", output_index=index, item=_call_item(answer, ids, ""))
            )
            content = [event("response.function_call_arguments.delta", **at, delta=p) for p in answer.pieces]
            tail = [
                event(
                    "response.function_call_arguments.done",
                    **at,
                    name=answer.tool_name,
                    arguments=answer.arguments_json,
                ),
                event("response.output_item.done", output_index=index, item=_call_item(answer, ids)),
            ]
        else:
            part = {"item_id": ids.message, "output_index": index, "content_index": 0}
            item = _message_item(answer, ids, content=[])
            head.append(event("response.output_item.added", output_index=index, item=item))
            head.append(event("response.content_part.added", **part, part=_text_part("")))
            content = [
                event("response.output_text.delta", **part, delta=piece, logprobs=[])
                for piece in answer.pieces
            ]
            tail = [
                event("response.output_text.done", **part, text=answer.text, logprobs=[]),
                event("response.content_part.done", **part, part=_text_part(answer.text)),
                event("response.output_item.done", output_index=index, item=_message_item(answer, ids)),
            ]
        final = self._response(answer, prompt, ids, final=True)
        terminal = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        tail.append(event(terminal, response=final))
        return StreamPlan(head=head, content=content, tail=tail)

    def _response(self, answer: Answer, prompt: Prompt, ids: _Ids, *, final: bool) -> JsonObject:
        """The Response object: complete when `final`, else as announced in the stream's opening events."""
        status, output = "in_progress", []
        if final:
            status = "incomplete" if answer.finish == "length" else "completed"
            output = [_reasoning_item(ids)] if answer.reasoning_tokens else []
            output.append(_call_item(answer, ids) if answer.is_tool_call else _message_item(answer, ids))
        echo = prompt.echo if isinstance(prompt, ResponsesPrompt) else {}
        return {
            "id": ids.response,
            "object": "response",
            "created_at": ids.created_at,
            "status": status,
            "background": False,
            "completed_at": unix_now() if status == "completed" else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "model": answer.model,
            "output": output,
            **echo,
            "usage": self.usage(answer) if final else None,
        }


def _input_items(value: Any) -> list[JsonObject]:
    """`input` as a list of items: a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise WireError("Missing required parameter: 'input'.", param="input")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise WireError(
                f"Invalid type for 'input[{index}]': expected an object.", param=f"input[{index}]"
            )
        if item.get("type", "message") == "message" and item.get("role") not in ROLES:
            raise WireError(
                f"Invalid value for 'input[{index}].role': expected one of {', '.join(sorted(ROLES))}.",
                param=f"input[{index}].role",
            )
    return value


def _tool_results(items: list[JsonObject]) -> list[ToolResult]:
    """The trailing function_call_output items, named after the function_call items they answer."""
    names = {
        str(item.get("call_id")): str(item.get("name") or "")
        for item in items
        if item.get("type") == "function_call"
    }
    results: list[ToolResult] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        results.append(ToolResult(names.get(str(item.get("call_id")), ""), content_text(item.get("output"))))
    return results[::-1]


def _echo(
    body: JsonObject, instructions: str | None, max_tokens: int | None, tools: list[Any], choice: Any
) -> JsonObject:
    """The request fields a Response repeats, with the API's defaults for those the request left out."""
    return {
        "instructions": instructions,
        "max_output_tokens": max_tokens,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None, **_object(body, "reasoning")},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium", **_object(body, "text")},
        "tool_choice": choice,
        "tools": [{"description": None, "strict": True, **tool} for tool in tools],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _object(body: JsonObject, key: str) -> JsonObject:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _new_ids() -> _Ids:
    # OpenAI's shapes: resp_/rs_/msg_/fc_ and 48 hex characters; call_ and 24 alphanumerics.
    return _Ids(
        response=new_id("resp_", 48),
        reasoning=new_id("rs_", 48),
        message=new_id("msg_", 48),
        function_call=new_id("fc_", 48),
        call="call_" + "".join(random.choices(CALL_ID_ALPHABET, k=24)),
        created_at=unix_now(),
    )


def _reasoning_item(ids: _Ids) -> JsonObject:
    return {"id": ids.reasoning, "type": "reasoning", "summary": []}


def _text_part(text: str) -> JsonObject:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(answer: Answer, ids: _Ids, content: list[JsonObject] | None = None) -> JsonObject:
    done = content is None
    status = ("incomplete" if answer.finish == "length" else "completed") if done else "in_progress"
    return {
        "id": ids.message,
        "type": "message",
        "status": status,
        "content": [_text_part(answer.text)] if content is None else content,
        "role": "assistant",
    }


def _call_item(answer: Answer, ids: _Ids, arguments: str | None = None) -> JsonObject:
    """The function_call item: in progress with the arguments streamed so far, else complete."""
    return {
        "id": ids.function_call,
        "type": "function_call",
        "status": "in_progress" if arguments is not None else "completed",
        "arguments": answer.arguments_json if arguments is None else arguments,
        "call_id": ids.call,
        "name": answer.tool_name,
    }
