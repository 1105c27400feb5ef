"""The /v1/messages door: Anthropic Messages bodies to the canonical chat form and canonical results back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.api_errors import ApiError, InvalidRequest
from routing.doors.messages_stream import MessagesStreamRenderer, error_json, message_json, models_list
from routing.pipeline.types import Completion, CompletionInput, Native, StreamMeta

ROLES = ("user", "assistant", "system")
MAX_MESSAGES = 10_000
MAX_OUTPUT_TOKENS = 2_000_000
MAX_USER_CHARS = 256  # the chat door's bound on `user`
MAX_TOOL_NAME = 64  # OpenAI's bound on function names; Claude Code's MCP tool names can be longer
THINKING_TYPES = ("enabled", "disabled", "adaptive", "between_tools")
EFFORT_FLOORS = ((4096, "high"), (2048, "medium"), (1024, "low"), (0, "minimal"))  # thinking budget → effort
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
USER_BLOCKS = frozenset({"text", "image", "document", "search_result", "tool_result"})
ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
TOOL_RESULT_BLOCKS = frozenset({"text", "image", "document", "search_result"})


# ------------------------------------------------------------------------------------------------ validation


def _server_block(kind: Any) -> bool:
    """A block of Anthropic's server tools (server_tool_use, web_search_tool_result, …): Claude-only history."""
    return isinstance(kind, str) and (
        kind.endswith("_tool_result") or kind in ("server_tool_use", "mcp_tool_use", "container_upload")
    )


def _invalid(param: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {problem}", param=param, code="invalid_value")


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(param, "must be an object")
    return value


def _list(value: Any, param: str, *, non_empty: bool = False, max_items: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(param, "must be a list")
    if non_empty and not value:
        raise _invalid(param, "must not be empty")
    if max_items is not None and len(value) > max_items:
        raise _invalid(param, f"must have at most {max_items} items")
    return value


def _string(value: Any, param: str, *, non_empty: bool = False, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise _invalid(param, "must be a string")
    if non_empty and not value:
        raise _invalid(param, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise _invalid(param, f"must be at most {max_length} characters")
    return value


def _integer(value: Any, param: str, *, minimum: int, maximum: int | None = None) -> int:
    # bool is an int to Python, never to a client.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(param, "must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        raise _invalid(
            param, f"must be between {minimum} and {maximum}" if maximum else f"must be ≥ {minimum}"
        )
    return value


def _number(value: Any, param: str, *, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(param, "must be a number")
    if not minimum <= value <= maximum:
        raise _invalid(param, f"must be between {minimum:g} and {maximum:g}")
    return float(value)


def _boolean(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(param, "must be a boolean")
    return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Django's request.headers ignores case; a plain dict (tests, internal callers) does not.
    return next((value for key, value in headers.items() if key.lower() == name), None)


# ------------------------------------------------------------------------------------------------ translation


@dataclass
class _Translation:
    """What translating one body learned: shortened tool names to map back, and what only Claude can take."""

    tool_names: dict[str, str] = field(default_factory=dict)  # canonical name → the client's name
    native_only: list[str] = field(default_factory=list)  # params the canonical form had to drop

    def tool_name(self, name: str) -> str:
        if len(name) <= MAX_TOOL_NAME:
            return name
        short = f"{name[:55]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        self.tool_names[short] = name
        return short

    def drop(self, param: str) -> None:
        self.native_only.append(param)

    def door_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.tool_names:
            params["tool_names"] = self.tool_names
        if self.native_only:
            params["native_only"] = self.native_only
        return params


def _texts(value: Any, param: str) -> str:
    """A string, or text blocks joined (system prompts, system turns)."""
    if isinstance(value, str):
        return value
    texts = []
    for index, block in enumerate(_list(value, param)):
        block = _object(block, f"{param}[{index}]")
        if block.get("type") != "text":
            raise _invalid(f"{param}[{index}].type", "must be text")
        texts.append(_string(block.get("text"), f"{param}[{index}].text"))
    return "\n\n".join(text for text in texts if text)


def _image(block: dict[str, Any], param: str, tr: _Translation) -> dict[str, Any] | None:
    source = _object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = _string(source.get("media_type"), f"{param}.source.media_type", non_empty=True)
        data = _string(source.get("data"), f"{param}.source.data")
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    if kind == "url":
        return {"type": "image_url", "image_url": {"url": _string(source.get("url"), f"{param}.source.url")}}
    if kind == "file":
        tr.drop(f"{param}.source")  # a Files API id means something to Anthropic only
        return None
    raise _invalid(f"{param}.source.type", "must be base64, url or file")


def _document(block: dict[str, Any], param: str, tr: _Translation) -> dict[str, Any] | None:
    source = _object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = _string(source.get("media_type"), f"{param}.source.media_type", non_empty=True)
        data = _string(source.get("data"), f"{param}.source.data")
        filename = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        return {
            "type": "file",
            "file": {"filename": filename, "file_data": f"data:{media_type};base64,{data}"},
        }
    if kind == "text":
        return {"type": "text", "text": _string(source.get("data"), f"{param}.source.data")}
    if kind == "content":
        return {"type": "text", "text": _texts(source.get("content"), f"{param}.source.content")}
    if kind in ("url", "file"):
        tr.drop(f"{param}.source")  # chat upstreams take inline files only
        return None
    raise _invalid(f"{param}.source.type", "must be base64, text, content, url or file")


def _search_result(block: dict[str, Any], param: str) -> dict[str, Any]:
    title = _string(block.get("title"), f"{param}.title")
    source = _string(block.get("source"), f"{param}.source")
    body = _texts(block.get("content"), f"{param}.content")
    return {"type": "text", "text": f"{title} ({source})\n{body}"}


def _part(block: dict[str, Any], param: str, tr: _Translation) -> dict[str, Any] | None:
    """One user-side block as a canonical content part; None when the canonical form drops it."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": _string(block.get("text"), f"{param}.text")}
    if kind == "image":
        return _image(block, param, tr)
    if kind == "document":
        return _document(block, param, tr)
    if kind == "search_result":
        return _search_result(block, param)
    tr.drop(param)  # a server-tool block
    return None


def _blocks(content: Any, param: str, allowed: frozenset[str], role: str) -> list[dict[str, Any]]:
    blocks = []
    for index, block in enumerate(_list(content, param)):
        block = _object(block, f"{param}[{index}]")
        if block.get("type") not in allowed and (
            role == "tool_result" or not _server_block(block.get("type"))
        ):
            raise _invalid(
                f"{param}[{index}].type", f"{block.get('type')!r} is not a block a {role} turn takes"
            )
        blocks.append(block)
    return blocks


def _tool_result(block: dict[str, Any], param: str, tr: _Translation) -> tuple[dict[str, Any], list]:
    """The role "tool" message, and the images it carried (a tool message takes text only; they follow it)."""
    call_id = _string(block.get("tool_use_id"), f"{param}.tool_use_id", non_empty=True)
    if block.get("is_error") is not None:
        _boolean(block["is_error"], f"{param}.is_error")  # dropped, as LiteLLM does by default
    content = block.get("content", "")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    else:
        for index, inner in enumerate(
            _blocks(content, f"{param}.content", TOOL_RESULT_BLOCKS, "tool_result")
        ):
            part = _part(inner, f"{param}.content[{index}]", tr)
            if part is not None and part["type"] == "text":
                texts.append(part["text"])
            elif part is not None:
                images.append(part)
    return {"role": "tool", "tool_call_id": call_id, "content": "\n".join(texts)}, images


def _user_turn(content: Any, param: str, tr: _Translation) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(_blocks(content, param, USER_BLOCKS, "user")):
        if block["type"] == "tool_result":
            message, images = _tool_result(block, f"{param}[{index}]", tr)
            tool_messages.append(message)
            parts += images
        elif (part := _part(block, f"{param}[{index}]", tr)) is not None:
            parts.append(part)
    # Tool results answer the previous assistant turn, so they come before the rest of this one (§3.5).
    return tool_messages + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_turn(content: Any, param: str, tr: _Translation) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(_blocks(content, param, ASSISTANT_BLOCKS, "assistant")):
        where = f"{param}[{index}]"
        if block["type"] == "text":
            texts.append(_string(block.get("text"), f"{where}.text"))
        elif block["type"] == "tool_use":
            call_id = _string(block.get("id"), f"{where}.id", non_empty=True)
            name = _string(block.get("name"), f"{where}.name", non_empty=True)
            arguments = json.dumps(_object(block.get("input"), f"{where}.input"), ensure_ascii=False)
            function = {"name": tr.tool_name(name), "arguments": arguments}
            calls.append({"id": call_id, "type": "function", "function": function})
        elif _server_block(block["type"]):
            tr.drop(where)
        # thinking and redacted_thinking: signed for Claude only; other vendors get the visible text (§3.8).
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: dict[str, Any], tr: _Translation) -> list[dict[str, Any]]:
    canonical: list[dict[str, Any]] = []
    if (system := body.get("system")) is not None and (text := _texts(system, "system")):
        canonical.append({"role": "system", "content": text})
    if "messages" not in body:
        raise _invalid("messages", "is required")
    for index, message in enumerate(
        _list(body["messages"], "messages", non_empty=True, max_items=MAX_MESSAGES)
    ):
        param = f"messages[{index}]"
        message = _object(message, param)
        role = message.get("role")
        if role not in ROLES:
            raise _invalid(f"{param}.role", "must be user, assistant or system")
        if "content" not in message:
            raise _invalid(f"{param}.content", "is required")
        content = message["content"]
        if not isinstance(content, str | list):
            raise _invalid(f"{param}.content", "must be a string or a list of content blocks")
        if role == "system":
            canonical.append({"role": "system", "content": _texts(content, f"{param}.content")})
        elif role == "user":
            canonical += _user_turn(content, f"{param}.content", tr)
        else:
            canonical.append(_assistant_turn(content, f"{param}.content", tr))
    return canonical


def _tools(value: Any, tr: _Translation) -> list[dict[str, Any]] | None:
    tools = []
    for index, tool in enumerate(_list(value, "tools", max_items=1000)):
        param = f"tools[{index}]"
        tool = _object(tool, param)
        name = _string(tool.get("name"), f"{param}.name", non_empty=True, max_length=256)
        kind = tool.get("type")
        if kind is not None and kind != "custom":
            _string(kind, f"{param}.type")
            tr.drop(param)  # a server tool (web_search_…, bash_…): run by Anthropic, not by the client
            continue
        schema = _object(tool.get("input_schema"), f"{param}.input_schema")
        if schema.get("type") != "object":
            raise _invalid(f"{param}.input_schema.type", "must be 'object'")
        function: dict[str, Any] = {"name": tr.tool_name(name), "parameters": schema}
        if (description := tool.get("description")) is not None:
            function["description"] = _string(description, f"{param}.description")
        tools.append({"type": "function", "function": function})
    return tools or None


def _tool_choice(value: Any, tr: _Translation, door_params: dict[str, Any]) -> Any:
    choice = _object(value, "tool_choice")
    kind = choice.get("type")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and _boolean(disable, "tool_choice.disable_parallel_tool_use"):
        door_params["parallel_tool_calls"] = False  # the canonical form has no field for it yet
    if kind == "tool":
        name = _string(choice.get("name"), "tool_choice.name", non_empty=True)
        return {"type": "function", "function": {"name": tr.tool_name(name)}}
    if kind not in TOOL_CHOICES:
        raise _invalid("tool_choice.type", "must be auto, any, tool or none")
    return TOOL_CHOICES[kind]


def _reasoning_effort(thinking: Any, output_config: dict[str, Any]) -> str:
    """§3.5: what a non-Claude reasoning model gets for Anthropic's thinking settings."""
    thinking = _object(thinking, "thinking")
    kind = thinking.get("type")
    if kind not in THINKING_TYPES:
        raise _invalid("thinking.type", "must be enabled, disabled or adaptive")
    if kind == "disabled":
        return "none"
    if kind == "enabled":
        budget = _integer(thinking.get("budget_tokens"), "thinking.budget_tokens", minimum=1)
        return next(effort for floor, effort in EFFORT_FLOORS if budget >= floor)
    effort = output_config.get("effort")
    return _string(effort, "output_config.effort") if effort is not None else "medium"


def _response_format(output_config: dict[str, Any]) -> dict[str, Any] | None:
    if (spec := output_config.get("format")) is None:
        return None
    spec = _object(spec, "output_config.format")
    if spec.get("type") != "json_schema":
        raise _invalid("output_config.format.type", "must be json_schema")
    schema = _object(spec.get("schema"), "output_config.format.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _canonical(body: Any, tr: _Translation) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]:
    """What /v1/messages and count_tokens share: the model, the canonical messages and tools."""
    body = _object(body, "body")
    if "model" not in body:
        raise _invalid("model", "is required")
    model = _string(body["model"], "model", non_empty=True, max_length=200)
    messages = _messages(body, tr)
    tools = _tools(body["tools"], tr) if body.get("tools") is not None else None
    return model, messages, tools


@dataclass(frozen=True, slots=True)
class CountTokensInput:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


def count_tokens_input(body: Any) -> CountTokensInput:
    """A /v1/messages/count_tokens body (no max_tokens), validated into what our estimator counts."""
    tr = _Translation()
    model, messages, tools = _canonical(body, tr)
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], tr, {})
    if body.get("thinking") is not None:
        _reasoning_effort(body["thinking"], {})
    return CountTokensInput(model=model, messages=messages, tools=tools)


# ------------------------------------------------------------------------------------------------ the door


class MessagesDoor:
    name = "messages"

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> CompletionInput:
        tr = _Translation()
        model, messages, tools = _canonical(body, tr)
        if "max_tokens" not in body:
            raise _invalid("max_tokens", "is required")
        max_tokens = _integer(body["max_tokens"], "max_tokens", minimum=1, maximum=MAX_OUTPUT_TOKENS)
        door_params: dict[str, Any] = {}
        temperature = top_p = None
        if body.get("temperature") is not None:
            temperature = _number(body["temperature"], "temperature", minimum=0, maximum=1)
        if body.get("top_p") is not None:
            top_p = _number(body["top_p"], "top_p", minimum=0, maximum=1)
        if body.get("top_k") is not None:
            door_params["top_k"] = _integer(body["top_k"], "top_k", minimum=0)
        stop = None
        if body.get("stop_sequences") is not None:
            sequences = _list(body["stop_sequences"], "stop_sequences")
            stop = [_string(s, f"stop_sequences[{i}]") for i, s in enumerate(sequences)] or None
        stream = _boolean(body["stream"], "stream") if body.get("stream") is not None else False
        tool_choice = None
        if body.get("tool_choice") is not None:
            tool_choice = _tool_choice(body["tool_choice"], tr, door_params)
        output_config = _object(body.get("output_config") or {}, "output_config")
        if body.get("thinking") is not None:
            door_params["reasoning_effort"] = _reasoning_effort(body["thinking"], output_config)
        user = None
        metadata = _object(body.get("metadata") or {}, "metadata")
        if metadata.get("user_id") is not None:
            # Claude Code's user_id is a JSON string with a session id: long, so cut to the chat door's bound.
            user = _string(metadata["user_id"], "metadata.user_id")[:MAX_USER_CHARS] or None
        beta = _header(headers, "anthropic-beta")
        directives = {d.strip().lower() for d in (_header(headers, "cache-control") or "").split(",")}
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
            tool_choice=tool_choice if tools else None,
            response_format=_response_format(output_config),
            stream=stream,
            include_usage=stream,
            cache_read="no-cache" not in directives,
            cache_write="no-store" not in directives,
            client_request_id=(_header(headers, "x-client-request-id") or "")[:200],
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
