"""The /v1/messages door: Anthropic Messages bodies to the canonical chat form and canonical results back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config.api_errors import ApiError
from routing.doors.messages_parse import (
    MAX_OUTPUT_TOKENS,
    MAX_USER_CHARS,
    Translation,
    as_boolean,
    as_integer,
    as_list,
    as_number,
    as_object,
    as_string,
    canonical_parts,
    field_error,
    reasoning_effort,
    response_format,
    tool_choice,
)
from routing.doors.messages_stream import MessagesStreamRenderer, error_json, message_json, models_list
from routing.doors.validation import header, header_fields
from routing.pipeline.types import Completion, CompletionInput, Native, StreamMeta


@dataclass(frozen=True, slots=True)
class CountTokensInput:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


def count_tokens_input(body: Any) -> CountTokensInput:
    """A /v1/messages/count_tokens body (no max_tokens), validated into what our estimator counts."""
    tr = Translation()
    model, messages, tools = canonical_parts(body, tr)
    if body.get("tool_choice") is not None:
        tool_choice(body["tool_choice"], tr, {})
    if body.get("thinking") is not None:
        reasoning_effort(body["thinking"], {})
    return CountTokensInput(model=model, messages=messages, tools=tools)


# ------------------------------------------------------------------------------------------------ the door


class MessagesDoor:
    name = "messages"

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> CompletionInput:
        tr = Translation()
        model, messages, tools = canonical_parts(body, tr)
        if "max_tokens" not in body:
            raise field_error("max_tokens", "is required")
        max_tokens = as_integer(body["max_tokens"], "max_tokens", minimum=1, maximum=MAX_OUTPUT_TOKENS)
        # Claude Code asks for more output than many models write (ingress-wire-formats §2.2): lower it to the
        # chosen model's maximum rather than refuse (routing.pipeline.plan.CLAMP_MAX_TOKENS).
        door_params: dict[str, Any] = {"clamp_max_tokens": True}
        temperature = top_p = None
        if body.get("temperature") is not None:
            temperature = as_number(body["temperature"], "temperature", minimum=0, maximum=1)
        if body.get("top_p") is not None:
            top_p = as_number(body["top_p"], "top_p", minimum=0, maximum=1)
        if body.get("top_k") is not None:
            door_params["top_k"] = as_integer(body["top_k"], "top_k", minimum=0)
        stop = None
        if body.get("stop_sequences") is not None:
            sequences = as_list(body["stop_sequences"], "stop_sequences")
            stop = [as_string(s, f"stop_sequences[{i}]") for i, s in enumerate(sequences)] or None
        stream = as_boolean(body["stream"], "stream") if body.get("stream") is not None else False
        choice = None
        if body.get("tool_choice") is not None:
            choice = tool_choice(body["tool_choice"], tr, door_params)
        output_config = as_object(body.get("output_config") or {}, "output_config")
        if body.get("thinking") is not None:
            door_params["reasoning_effort"] = reasoning_effort(body["thinking"], output_config)
        user = None
        metadata = as_object(body.get("metadata") or {}, "metadata")
        if metadata.get("user_id") is not None:
            # Claude Code's user_id is a JSON string with a session id: long, so cut to the chat door's bound.
            user = as_string(metadata["user_id"], "metadata.user_id")[:MAX_USER_CHARS] or None
        beta = header(headers, "anthropic-beta")
        return CompletionInput(
            messages=messages,
            door=self.name,
            model=model,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=stop,
            user=user,
            tools=tools,
            # A choice without tools is an error to OpenAI; Anthropic's server tools are not in `tools`.
            tool_choice=choice if tools else None,
            response_format=response_format(output_config),
            stream=stream,
            include_usage=stream,
            **header_fields(headers),
            native=Native(
                provider="anthropic", body=body, headers={"anthropic-beta": beta} if beta is not None else {}
            ),
            door_params={**door_params, **tr.door_params()},
        )

    def render(self, completion: Completion) -> dict[str, Any]:
        return message_json(completion)

    def stream_renderer(self, meta: StreamMeta) -> MessagesStreamRenderer:
        return MessagesStreamRenderer(meta)

    def error_body(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        return error_json(error)


__all__ = ["CountTokensInput", "MessagesDoor", "count_tokens_input", "models_list"]
