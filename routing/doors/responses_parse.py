"""The /v1/responses parse: OpenAI Responses bodies validated and translated into the canonical request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.api_errors import InvalidRequest
from routing.doors.responses_stream import call_id_for
from routing.doors.validation import header_fields, invalid, is_integer, is_number
from routing.pipeline.types import CompletionInput, Native

ROLES = ("user", "assistant", "system", "developer")
IMAGE_DETAILS = ("low", "high", "auto", "original")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed")
# Stateful or hosted features with no canonical form: a clear 400 beats a silently different answer.
UNSUPPORTED = ("conversation", "prompt", "background", "context_management", "moderation")
MAX_TOKENS = 2_000_000


def _string(value: Any, param: str, *, max_length: int | None = None, required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value):
        raise invalid(f"{param} must be a {'non-empty ' if required else ''}string", param)
    if max_length is not None and len(value) > max_length:
        raise invalid(f"{param} must be at most {max_length} characters", param)
    return value


def _optional_string(body: Mapping[str, Any], key: str, *, max_length: int | None = None) -> str | None:
    value = body.get(key)
    return None if value is None else _string(value, key, max_length=max_length)


def _optional_bool(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(f"{key} must be a boolean", key)
    return value


def _optional_number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not is_number(value) or not low <= value <= high:
        raise invalid(f"{key} must be a number from {low:g} to {high:g}", key)
    return float(value)


def _optional_int(body: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not is_integer(value) or not low <= value <= high:
        raise invalid(f"{key} must be an integer from {low} to {high}", key)
    return value


def _optional_choice(value: Any, param: str, choices: tuple[str, ...]) -> str | None:
    if value is not None and value not in choices:
        raise invalid(f"{param} must be one of {', '.join(choices)}", param)
    return value


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{param} must be an object", param)
    return value


# -- input items ---------------------------------------------------------------------------------------


def _content_part(part: Any, role: str, param: str) -> dict[str, Any]:
    part = _object(part, param)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _string(part.get("text"), f"{param}.text")}
    if kind == "refusal":
        return {"type": "text", "text": _string(part.get("refusal"), f"{param}.refusal")}
    if kind in ("input_image", "input_file") and role != "user":
        raise invalid(f"{kind} parts are only allowed in user messages", f"{param}.type")
    if kind == "input_image":
        if part.get("image_url") is None and part.get("file_id") is not None:
            # A file_id names an upload in some vendor account; none of the client's stands behind the router.
            raise invalid("input_image by file_id is not supported; send image_url", f"{param}.file_id")
        url = _string(part.get("image_url"), f"{param}.image_url", required=True)
        detail = _optional_choice(part.get("detail"), f"{param}.detail", IMAGE_DETAILS) or "auto"
        # Chat has no "original"; "high" is the detail that keeps the most of the image.
        return {
            "type": "image_url",
            "image_url": {"url": url, "detail": "high" if detail == "original" else detail},
        }
    if kind == "input_file":
        # Chat file parts carry the bytes only; a file_id names an upload that does not exist here.
        for key in ("file_id", "file_url"):
            if part.get(key) is not None:
                raise invalid(f"input_file by {key} is not supported; send file_data", f"{param}.{key}")
        file = {"file_data": _string(part.get("file_data"), f"{param}.file_data", required=True)}
        if part.get("filename") is not None:
            file["filename"] = _string(part["filename"], f"{param}.filename")
        return {"type": "file", "file": file}
    raise invalid(f"Content part type '{kind}' is not supported", f"{param}.type")


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ROLES:
        raise invalid(f"{param}.role must be one of {', '.join(ROLES)}", f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise invalid(f"{param}.content must be a string or a list of content parts", f"{param}.content")
    parts = [_content_part(part, role, f"{param}.content[{i}]") for i, part in enumerate(content)]
    if role != "assistant" and not parts:
        raise invalid(f"{param}.content must not be empty", f"{param}.content")
    # Assistant turns become one string (several output_text parts read as one text, as the SDK's
    # output_text joins them); a lone text part is a string for any role, the form every adapter takes.
    if all(p["type"] == "text" for p in parts) and (role == "assistant" or len(parts) == 1):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _function_call(item: dict[str, Any], param: str) -> dict[str, Any]:
    raw_id = item.get("call_id") or item.get("id")  # the item id stands in when call_id is missing
    call_id = _string(raw_id, f"{param}.call_id", required=True)
    name = _string(item.get("name"), f"{param}.name", required=True)
    arguments = _string(item.get("arguments"), f"{param}.arguments")
    return {
        "id": call_id_for(call_id, seed=call_id),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _function_call_output(item: dict[str, Any], param: str) -> dict[str, Any]:
    call_id = _string(item.get("call_id"), f"{param}.call_id", required=True)
    output = item.get("output")
    content: str | list[dict[str, Any]]
    if isinstance(output, str):
        content = output
    elif isinstance(output, list):
        content = []
        for i, part in enumerate(output):
            part = _object(part, f"{param}.output[{i}]")
            if part.get("type") not in ("input_text", "output_text"):
                # A chat tool message holds text only, on every vendor.
                raise invalid("function_call_output supports text parts only", f"{param}.output[{i}].type")
            content.append({"type": "text", "text": _string(part.get("text"), f"{param}.output[{i}].text")})
    else:
        raise invalid(f"{param}.output must be a string or a list of parts", f"{param}.output")
    return {"role": "tool", "tool_call_id": call_id_for(call_id, seed=call_id), "content": content}


def _append_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """Calls of one turn form one assistant message (OpenAI rejects split calls), with its text if any."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last["tool_calls"] = [*(last.get("tool_calls") or []), call]
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _input_messages(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise invalid("input must be a string or a list of input items", "input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        param = f"input[{index}]"
        item = _object(item, param)
        kind = item.get("type") or "message"  # an easy input message may leave type out
        if kind == "message":
            messages.append(_message(item, param))
        elif kind == "function_call":
            _append_call(messages, _function_call(item, param))
        elif kind == "function_call_output":
            messages.append(_function_call_output(item, param))
        elif kind != "reasoning":
            raise invalid(f"Input item type '{kind}' is not supported", f"{param}.type")
        # reasoning items are opaque to other vendors; a native call still gets them in the body.
    return messages


def require_calls_for_outputs(messages: list[dict[str, Any]]) -> None:
    """Every tool result needs an earlier call: a guess at the call would put words in the model's mouth."""
    seen: set[str] = set()
    for message in messages:
        seen.update(call.get("id") for call in message.get("tool_calls") or [])
        if message["role"] == "tool" and message.get("tool_call_id") not in seen:
            raise invalid(
                f"No function call found for function_call_output with call_id '{message.get('tool_call_id')}'",
                "input",
            )


# -- the other request fields --------------------------------------------------------------------------


def _tools(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise invalid("tools must be a list", "tools")
    tools = []
    for index, tool in enumerate(raw):
        param = f"tools[{index}]"
        tool = _object(tool, param)
        if tool.get("type") != "function":
            raise invalid(
                f"Tool type '{tool.get('type')}' is not supported; only function tools", f"{param}.type"
            )
        function: dict[str, Any] = {
            "name": _string(tool.get("name"), f"{param}.name", max_length=64, required=True)
        }
        if tool.get("description") is not None:
            function["description"] = _string(tool["description"], f"{param}.description")
        if tool.get("parameters") is not None:
            function["parameters"] = _object(tool["parameters"], f"{param}.parameters")
        if tool.get("strict") is not None:
            if not isinstance(tool["strict"], bool):
                raise invalid(f"{param}.strict must be a boolean", f"{param}.strict")
            function["strict"] = tool["strict"]
        tools.append({"type": "function", "function": function})
    return tools or None


def _tool_choice(raw: Any, tools: list[dict[str, Any]] | None) -> tuple[Any, list[dict[str, Any]] | None]:
    """The canonical tool_choice, and the tools it leaves (allowed_tools narrows them: chat has no such choice)."""
    names: set[str] | None = None  # the tools the choice names, which must exist
    narrow = False
    if raw is None or raw in ("none", "auto", "required"):
        choice = raw
    elif isinstance(raw, dict) and raw.get("type") == "function":
        name = _string(raw.get("name"), "tool_choice.name", required=True)
        choice, names = {"type": "function", "function": {"name": name}}, {name}
    elif isinstance(raw, dict) and raw.get("type") == "allowed_tools":
        narrow = True
        choice = _optional_choice(raw.get("mode"), "tool_choice.mode", ("auto", "required")) or "auto"
        allowed = raw.get("tools")
        if not isinstance(allowed, list) or not all(
            isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
            for t in allowed
        ):
            raise invalid("tool_choice.tools must be a list of {type: function, name}", "tool_choice.tools")
        names = {t["name"] for t in allowed}
    else:
        raise invalid(
            "tool_choice must be none, auto, required, {type: function, name} or allowed_tools", "tool_choice"
        )
    if not tools:
        return None, None  # a choice among no tools means nothing to a chat model
    if names is None:
        return choice, tools
    unknown = names - {tool["function"]["name"] for tool in tools}
    if unknown:
        raise invalid(f"tool_choice names {sorted(unknown)[0]!r}, which is not in tools", "tool_choice")
    if narrow:
        tools = [tool for tool in tools if tool["function"]["name"] in names]
    return choice, tools


def _response_format(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    text = _object(raw, "text")
    _optional_choice(text.get("verbosity"), "text.verbosity", ("low", "medium", "high"))
    if text.get("format") is None:
        return None
    fmt = _object(text["format"], "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None  # plain text is what no response_format means
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise invalid("text.format.type must be text, json_object or json_schema", "text.format.type")
    schema: dict[str, Any] = {
        "name": _string(fmt.get("name"), "text.format.name", max_length=64, required=True),
        "schema": _object(fmt.get("schema"), "text.format.schema"),
    }
    if fmt.get("description") is not None:
        schema["description"] = _string(fmt["description"], "text.format.description")
    if fmt.get("strict") is not None:
        if not isinstance(fmt["strict"], bool):
            raise invalid("text.format.strict must be a boolean", "text.format.strict")
        schema["strict"] = fmt["strict"]
    return {"type": "json_schema", "json_schema": schema}


def _check_reasoning(raw: Any) -> None:
    if raw is None:
        return
    reasoning = _object(raw, "reasoning")
    _optional_choice(reasoning.get("effort"), "reasoning.effort", EFFORTS)
    _optional_choice(reasoning.get("summary"), "reasoning.summary", SUMMARIES)


def _metadata(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    metadata = _object(raw, "metadata")
    if len(metadata) > 16:
        raise invalid("metadata holds at most 16 pairs", "metadata")
    for key, value in metadata.items():
        if len(key) > 64:
            raise invalid("metadata keys must be at most 64 characters", "metadata")
        _string(value, f"metadata.{key}", max_length=512)
    return metadata


def _include(raw: Any) -> None:
    if raw is not None and (not isinstance(raw, list) or not all(isinstance(v, str) for v in raw)):
        raise invalid("include must be a list of strings", "include")


def completion_input(body: dict[str, Any], headers: Mapping[str, str], *, door: str) -> CompletionInput:
    """A /v1/responses body, validated, as the canonical request; door_params hold what a Response echoes."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    for key in UNSUPPORTED:
        if body.get(key) not in (None, False):
            raise invalid(f"{key} is not supported by the router", key)
    model = _string(body.get("model"), "model", max_length=200, required=True)
    previous_response_id = _optional_string(body, "previous_response_id", max_length=200)
    if previous_response_id == "":
        raise invalid("previous_response_id must be a non-empty string", "previous_response_id")
    raw_input = body.get("input")
    if raw_input is None and previous_response_id is None:
        raise invalid("input is required", "input")
    instructions = _optional_string(body, "instructions")
    conversation = _input_messages(raw_input) if raw_input is not None else []
    if previous_response_id is None:
        if not conversation:
            raise invalid("input must not be empty", "input")
        # With a previous response, continue_from checks, once the stored calls are in front.
        require_calls_for_outputs(conversation)
    messages = [{"role": "system", "content": instructions}] if instructions else []
    messages += conversation
    tools = _tools(body.get("tools"))
    tool_choice, tools = _tool_choice(body.get("tool_choice"), tools)
    parallel_tool_calls = _optional_bool(body, "parallel_tool_calls")
    max_output_tokens = _optional_int(body, "max_output_tokens", 16, MAX_TOKENS)
    temperature = _optional_number(body, "temperature", 0, 2)
    top_p = _optional_number(body, "top_p", 0, 1)
    response_format = _response_format(body.get("text"))
    _check_reasoning(body.get("reasoning"))
    stream = bool(_optional_bool(body, "stream"))
    _object(body.get("stream_options") or {}, "stream_options")
    store = _optional_bool(body, "store") is not False  # OpenAI's default is to store
    metadata = _metadata(body.get("metadata"))
    _include(body.get("include"))
    truncation = _optional_choice(body.get("truncation"), "truncation", ("auto", "disabled"))
    user = _optional_string(body, "user", max_length=256)
    safety_identifier = _optional_string(body, "safety_identifier", max_length=64)
    _optional_int(body, "max_tool_calls", 1, 1_000_000)
    _optional_int(body, "top_logprobs", 0, 20)
    return CompletionInput(
        messages=messages,
        door=door,
        model=model,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_output_tokens,
        user=safety_identifier or user,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        stream=stream,
        include_usage=stream,  # a Response always reports usage, so the pipeline must get it
        **header_fields(headers),
        store=store,
        native=Native(provider="openai", body=dict(body)),
        door_params={
            "instructions": instructions,
            "metadata": metadata,
            "tools": body.get("tools") or [],
            "tool_choice": body.get("tool_choice"),
            "parallel_tool_calls": parallel_tool_calls,
            "temperature": temperature,
            "top_p": top_p,
            "max_output_tokens": max_output_tokens,
            "previous_response_id": previous_response_id,
            "reasoning": body.get("reasoning"),
            "text": body.get("text"),
            "truncation": truncation,
            "store": store,
            "user": user,
            "safety_identifier": safety_identifier,
        },
    )
