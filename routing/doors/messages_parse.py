"""The /v1/messages parse: field checks, and Anthropic messages and tools translated to canonical form."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from config.api_errors import InvalidRequest
from routing.doors.validation import invalid, is_integer, is_number

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


def field_error(param: str, problem: str) -> InvalidRequest:
    return invalid(f"{param}: {problem}", param)


def as_object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise field_error(param, "must be an object")
    return value


def as_list(value: Any, param: str, *, non_empty: bool = False, max_items: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise field_error(param, "must be a list")
    if non_empty and not value:
        raise field_error(param, "must not be empty")
    if max_items is not None and len(value) > max_items:
        raise field_error(param, f"must have at most {max_items} items")
    return value


def as_string(value: Any, param: str, *, non_empty: bool = False, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise field_error(param, "must be a string")
    if non_empty and not value:
        raise field_error(param, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise field_error(param, f"must be at most {max_length} characters")
    return value


def as_integer(value: Any, param: str, *, minimum: int, maximum: int | None = None) -> int:
    if not is_integer(value):
        raise field_error(param, "must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        raise field_error(
            param, f"must be between {minimum} and {maximum}" if maximum else f"must be ≥ {minimum}"
        )
    return value


def as_number(value: Any, param: str, *, minimum: float, maximum: float) -> float:
    if not is_number(value):
        raise field_error(param, "must be a number")
    if not minimum <= value <= maximum:
        raise field_error(param, f"must be between {minimum:g} and {maximum:g}")
    return float(value)


def as_boolean(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise field_error(param, "must be a boolean")
    return value


# ------------------------------------------------------------------------------------------------ translation


@dataclass
class Translation:
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
    for index, block in enumerate(as_list(value, param)):
        block = as_object(block, f"{param}[{index}]")
        if block.get("type") != "text":
            raise field_error(f"{param}[{index}].type", "must be text")
        texts.append(as_string(block.get("text"), f"{param}[{index}].text"))
    return "\n\n".join(text for text in texts if text)


def _image(block: dict[str, Any], param: str, tr: Translation) -> dict[str, Any] | None:
    source = as_object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = as_string(source.get("media_type"), f"{param}.source.media_type", non_empty=True)
        data = as_string(source.get("data"), f"{param}.source.data")
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    if kind == "url":
        return {
            "type": "image_url",
            "image_url": {"url": as_string(source.get("url"), f"{param}.source.url")},
        }
    if kind == "file":
        tr.drop(f"{param}.source")  # a Files API id means something to Anthropic only
        return None
    raise field_error(f"{param}.source.type", "must be base64, url or file")


def _document(block: dict[str, Any], param: str, tr: Translation) -> dict[str, Any] | None:
    source = as_object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = as_string(source.get("media_type"), f"{param}.source.media_type", non_empty=True)
        data = as_string(source.get("data"), f"{param}.source.data")
        filename = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        return {
            "type": "file",
            "file": {"filename": filename, "file_data": f"data:{media_type};base64,{data}"},
        }
    if kind == "text":
        return {"type": "text", "text": as_string(source.get("data"), f"{param}.source.data")}
    if kind == "content":
        return {"type": "text", "text": _texts(source.get("content"), f"{param}.source.content")}
    if kind in ("url", "file"):
        tr.drop(f"{param}.source")  # chat upstreams take inline files only
        return None
    raise field_error(f"{param}.source.type", "must be base64, text, content, url or file")


def _search_result(block: dict[str, Any], param: str) -> dict[str, Any]:
    title = as_string(block.get("title"), f"{param}.title")
    source = as_string(block.get("source"), f"{param}.source")
    body = _texts(block.get("content"), f"{param}.content")
    return {"type": "text", "text": f"{title} ({source})\n{body}"}


def _part(block: dict[str, Any], param: str, tr: Translation) -> dict[str, Any] | None:
    """One user-side block as a canonical content part; None when the canonical form drops it."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": as_string(block.get("text"), f"{param}.text")}
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
    for index, block in enumerate(as_list(content, param)):
        block = as_object(block, f"{param}[{index}]")
        if block.get("type") not in allowed and (
            role == "tool_result" or not _server_block(block.get("type"))
        ):
            raise field_error(
                f"{param}[{index}].type", f"{block.get('type')!r} is not a block a {role} turn takes"
            )
        blocks.append(block)
    return blocks


def _tool_result(block: dict[str, Any], param: str, tr: Translation) -> tuple[dict[str, Any], list]:
    """The role "tool" message, and the images it carried (a tool message takes text only; they follow it)."""
    call_id = as_string(block.get("tool_use_id"), f"{param}.tool_use_id", non_empty=True)
    if block.get("is_error") is not None:
        as_boolean(block["is_error"], f"{param}.is_error")  # dropped, as LiteLLM does by default
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


def _user_turn(content: Any, param: str, tr: Translation) -> list[dict[str, Any]]:
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


def _assistant_turn(content: Any, param: str, tr: Translation) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(_blocks(content, param, ASSISTANT_BLOCKS, "assistant")):
        where = f"{param}[{index}]"
        if block["type"] == "text":
            texts.append(as_string(block.get("text"), f"{where}.text"))
        elif block["type"] == "tool_use":
            call_id = as_string(block.get("id"), f"{where}.id", non_empty=True)
            name = as_string(block.get("name"), f"{where}.name", non_empty=True)
            arguments = json.dumps(as_object(block.get("input"), f"{where}.input"), ensure_ascii=False)
            function = {"name": tr.tool_name(name), "arguments": arguments}
            calls.append({"id": call_id, "type": "function", "function": function})
        elif _server_block(block["type"]):
            tr.drop(where)
        # thinking and redacted_thinking: signed for Claude only; other vendors get the visible text (§3.8).
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: dict[str, Any], tr: Translation) -> list[dict[str, Any]]:
    canonical: list[dict[str, Any]] = []
    if (system := body.get("system")) is not None and (text := _texts(system, "system")):
        canonical.append({"role": "system", "content": text})
    if "messages" not in body:
        raise field_error("messages", "is required")
    for index, message in enumerate(
        as_list(body["messages"], "messages", non_empty=True, max_items=MAX_MESSAGES)
    ):
        param = f"messages[{index}]"
        message = as_object(message, param)
        role = message.get("role")
        if role not in ROLES:
            raise field_error(f"{param}.role", "must be user, assistant or system")
        if "content" not in message:
            raise field_error(f"{param}.content", "is required")
        content = message["content"]
        if not isinstance(content, str | list):
            raise field_error(f"{param}.content", "must be a string or a list of content blocks")
        if role == "system":
            canonical.append({"role": "system", "content": _texts(content, f"{param}.content")})
        elif role == "user":
            canonical += _user_turn(content, f"{param}.content", tr)
        else:
            canonical.append(_assistant_turn(content, f"{param}.content", tr))
    return canonical


def _tools(value: Any, tr: Translation) -> list[dict[str, Any]] | None:
    tools = []
    for index, tool in enumerate(as_list(value, "tools", max_items=1000)):
        param = f"tools[{index}]"
        tool = as_object(tool, param)
        name = as_string(tool.get("name"), f"{param}.name", non_empty=True, max_length=256)
        kind = tool.get("type")
        if kind is not None and kind != "custom":
            as_string(kind, f"{param}.type")
            tr.drop(param)  # a server tool (web_search_…, bash_…): run by Anthropic, not by the client
            continue
        schema = as_object(tool.get("input_schema"), f"{param}.input_schema")
        if schema.get("type") != "object":
            raise field_error(f"{param}.input_schema.type", "must be 'object'")
        function: dict[str, Any] = {"name": tr.tool_name(name), "parameters": schema}
        if (description := tool.get("description")) is not None:
            function["description"] = as_string(description, f"{param}.description")
        tools.append({"type": "function", "function": function})
    return tools or None


def tool_choice(value: Any, tr: Translation, door_params: dict[str, Any]) -> Any:
    choice = as_object(value, "tool_choice")
    kind = choice.get("type")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and as_boolean(disable, "tool_choice.disable_parallel_tool_use"):
        door_params["parallel_tool_calls"] = False  # the canonical form has no field for it yet
    if kind == "tool":
        name = as_string(choice.get("name"), "tool_choice.name", non_empty=True)
        return {"type": "function", "function": {"name": tr.tool_name(name)}}
    if kind not in TOOL_CHOICES:
        raise field_error("tool_choice.type", "must be auto, any, tool or none")
    return TOOL_CHOICES[kind]


def reasoning_effort(thinking: Any, output_config: dict[str, Any]) -> str:
    """§3.5: what a non-Claude reasoning model gets for Anthropic's thinking settings."""
    thinking = as_object(thinking, "thinking")
    kind = thinking.get("type")
    if kind not in THINKING_TYPES:
        raise field_error("thinking.type", "must be enabled, disabled or adaptive")
    if kind == "disabled":
        return "none"
    if kind == "enabled":
        budget = as_integer(thinking.get("budget_tokens"), "thinking.budget_tokens", minimum=1)
        return next(effort for floor, effort in EFFORT_FLOORS if budget >= floor)
    effort = output_config.get("effort")
    return as_string(effort, "output_config.effort") if effort is not None else "medium"


def response_format(output_config: dict[str, Any]) -> dict[str, Any] | None:
    if (spec := output_config.get("format")) is None:
        return None
    spec = as_object(spec, "output_config.format")
    if spec.get("type") != "json_schema":
        raise field_error("output_config.format.type", "must be json_schema")
    schema = as_object(spec.get("schema"), "output_config.format.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def canonical_parts(
    body: Any, tr: Translation
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]:
    """What /v1/messages and count_tokens share: the model, the canonical messages and tools."""
    body = as_object(body, "body")
    if "model" not in body:
        raise field_error("model", "is required")
    model = as_string(body["model"], "model", non_empty=True, max_length=200)
    messages = _messages(body, tr)
    tools = _tools(body["tools"], tr) if body.get("tools") is not None else None
    return model, messages, tools
