"""The /v1/responses door: OpenAI Responses bodies to the canonical request, and the canonical result back."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from config.api_errors import ApiError
from routing.doors.responses_parse import completion_input, require_calls_for_outputs
from routing.doors.responses_stream import (
    ResponsesStreamRenderer,
    call_id_for,
    completed_at,
    output_items,
    request_id_of,
    response_id,
    response_object,
    status_of,
    usage_object,
)
from routing.pipeline.types import Completion, CompletionInput, StreamMeta

__all__ = ["ResponsesDoor", "continue_from", "conversation_of", "request_id_of", "response_id"]


def _instruction_count(inp: CompletionInput) -> int:
    """How many leading messages are this request's own instructions (never carried into a continuation)."""
    return 1 if inp.door_params.get("instructions") else 0


def conversation_of(inp: CompletionInput) -> list[dict[str, Any]]:
    """What to store for a later continue_from: the messages (history included) without the instructions."""
    return inp.messages[_instruction_count(inp) :]


# -- continuation --------------------------------------------------------------------------------------


def _parts_as_items(content: Any, *, assistant: bool) -> list[dict[str, Any]]:
    text_type = "output_text" if assistant else "input_text"  # OpenAI takes only output_text from assistants
    if isinstance(content, str):
        return [{"type": text_type, "text": content}]
    parts: list[dict[str, Any]] = []
    for part in content or []:
        if part.get("type") == "text":
            parts.append({"type": text_type, "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            image = part.get("image_url") or {}
            parts.append(
                {"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail", "auto")}
            )
        elif part.get("type") == "file":
            parts.append({"type": "input_file", **(part.get("file") or {})})
    return parts


def input_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages as Responses input items, for a native call that must carry the whole conversation."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role, content = message["role"], message.get("content")
        if role == "tool":
            output = content if isinstance(content, str) else _parts_as_items(content, assistant=False)
            items.append(
                {"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": output}
            )
            continue
        if content:
            items.append(
                {
                    "type": "message",
                    "role": role,
                    "content": _parts_as_items(content, assistant=role == "assistant"),
                }
            )
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name", ""),
                    "arguments": function.get("arguments", ""),
                }
            )
    return items


def continue_from(
    inp: CompletionInput, previous_messages: list[dict[str, Any]], previous_output: dict[str, Any]
) -> CompletionInput:
    """The request with a stored conversation (its messages, then its answer) put before the new input.

    The native body gets the same conversation as explicit items, without previous_response_id and with
    store:false: our log is the store, and OpenAI's is not divided by tenant.
    """
    previous_request = request_id_of(inp.door_params.get("previous_response_id") or "") or ""
    answer: dict[str, Any] = {"role": "assistant", "content": previous_output.get("content")}
    # The call ids the client was shown, which render() derived from the stored answer the same way.
    calls = [
        {**call, "id": call_id_for(call.get("id"), seed=f"{previous_request}:{position}")}
        for position, call in enumerate(previous_output.get("tool_calls") or [])
    ]
    if calls:
        answer["tool_calls"] = calls
    history = [dict(message) for message in previous_messages]
    if answer["content"] or calls:
        history.append(answer)
    head = _instruction_count(inp)
    messages = [*inp.messages[:head], *history, *inp.messages[head:]]
    require_calls_for_outputs(messages)
    native = inp.native
    if native is not None:
        body = {key: value for key, value in native.body.items() if key != "previous_response_id"}
        new_input = body.get("input")
        new_items = (
            [{"role": "user", "content": new_input}] if isinstance(new_input, str) else new_input or []
        )
        # The new input goes as the client sent it: reasoning items and the like survive the native path.
        body["input"] = [*input_items(history), *new_items]
        body["store"] = False
        native = dataclasses.replace(native, body=body)
    return dataclasses.replace(inp, messages=messages, native=native)


# -- the door ------------------------------------------------------------------------------------------


class ResponsesDoor:
    name = "responses"

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> CompletionInput:
        return completion_input(body, headers, door=self.name)

    def render(self, completion: Completion) -> dict[str, Any]:
        params = completion.door_params
        resp_id = response_id(completion.request_id)
        if completion.raw is not None:
            # OpenAI's own Response, under our id and catalog model, with the store the client asked for.
            body = {**completion.raw, "id": resp_id, "model": completion.model}
            body["store"] = params.get("store", True)
            body["router"] = completion.router_facts()
            return body
        status, incomplete = status_of(completion.finish_reason)
        body = response_object(
            resp_id=resp_id,
            created_at=int(completion.created_at.timestamp()),
            model=completion.model,
            status=status,
            params=params,
            output=output_items(completion),
            usage=usage_object(completion.usage),
            incomplete_details=incomplete,
            completed_at=completed_at(completion) if status == "completed" else None,
        )
        body["router"] = completion.router_facts()
        return body

    def stream_renderer(self, meta: StreamMeta) -> ResponsesStreamRenderer:
        return ResponsesStreamRenderer(meta)

    def error_body(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        return error.status, error.body()
