"""The Response object of /v1/responses and its stream of events, built from the canonical result and deltas."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import orjson

from config.api_errors import ApiError
from config.rendering import dumps
from providers.adapters.base import StreamDelta, Usage
from routing.pipeline.types import Completion, StreamMeta

RESPONSE_PREFIX = "resp_"
REQUEST_PREFIX = "req_"
# OpenAI's Chat Completions rejects longer tool-call ids, and a call_id we hand out is replayed there.
MAX_CALL_ID = 40
# Lifecycle events carry the whole Response object, whose id and model a native stream must show as ours.
_LIFECYCLE = frozenset(
    f"response.{name}" for name in ("created", "queued", "in_progress", "completed", "incomplete", "failed")
)
_TERMINAL = frozenset(("response.completed", "response.incomplete", "response.failed", "error"))
_EVENT_SPLIT = re.compile(rb"(\r?\n\r?\n)")


def response_id(request_id: str) -> str:
    """Our resp_ id for a request: the request id under another prefix, so no table maps one to the other."""
    return RESPONSE_PREFIX + request_id.removeprefix(REQUEST_PREFIX)


def request_id_of(resp_id: str) -> str | None:
    """The request a resp_ id names, or None for an id we never minted."""
    if not resp_id.startswith(RESPONSE_PREFIX) or len(resp_id) == len(RESPONSE_PREFIX):
        return None
    return REQUEST_PREFIX + resp_id.removeprefix(RESPONSE_PREFIX)


def call_id_for(call_id: str | None, *, seed: str) -> str:
    """The call_id a client sees and replays: the chat id when it fits, else a stable `call_` + 24 hex.

    Derived, never random, so that a replayed call, its output and a re-rendered stored response agree.
    """
    if call_id and len(call_id) <= MAX_CALL_ID:
        return call_id
    return "call_" + hashlib.sha256((call_id or seed).encode()).hexdigest()[:24]


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """Response status and incomplete_details for a chat finish_reason (reference §3.3, §3.7)."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason in ("content_filter", "refusal"):
        return "incomplete", {"reason": "content_filter"}
    if not finish_reason:
        return "incomplete", {"reason": None}
    return "completed", None


def usage_object(usage: Usage) -> dict[str, Any]:
    # Both details are required by the current SDK and spec, so they are sent even when zero.
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def message_item(item_id: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call_item(
    call_id: str, name: str, arguments: str, *, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": "fc_" + call_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def message_id(request_id: str, ordinal: int = 0) -> str:
    base = "msg_" + request_id.removeprefix(REQUEST_PREFIX)
    return base if ordinal == 0 else f"{base}_{ordinal}"


def output_items(completion: Completion) -> list[dict[str, Any]]:
    """Message first (if any text), then one function_call per tool call, as OpenAI orders them."""
    items: list[dict[str, Any]] = []
    if completion.content:
        items.append(message_item(message_id(completion.request_id), completion.content))
    for position, call in enumerate(completion.tool_calls or []):
        function = call.get("function") or {}
        call_id = call_id_for(call.get("id"), seed=f"{completion.request_id}:{position}")
        items.append(function_call_item(call_id, function.get("name") or "", function.get("arguments") or ""))
    return items


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def response_object(
    *,
    resp_id: str,
    created_at: int,
    model: str,
    status: str,
    params: dict[str, Any],
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    incomplete_details: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """Every field the spec requires, the request's own settings echoed, OpenAI's defaults for the rest."""
    text = params.get("text") or {}
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": params.get("instructions"),
        "max_output_tokens": params.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": _or(params.get("parallel_tool_calls"), True),
        "previous_response_id": params.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None, **(params.get("reasoning") or {})},
        "safety_identifier": params.get("safety_identifier"),
        "store": _or(params.get("store"), True),
        "temperature": _or(params.get("temperature"), 1.0),
        "text": {**text, "format": text.get("format") or {"type": "text"}},
        "tool_choice": _or(params.get("tool_choice"), "auto"),
        "tools": params.get("tools") or [],
        "top_p": _or(params.get("top_p"), 1.0),
        "truncation": _or(params.get("truncation"), "disabled"),
        "usage": usage,
        "user": params.get("user"),
        "metadata": params.get("metadata") or {},
    }


def completed_at(completion: Completion) -> int:
    return int((completion.created_at + timedelta(milliseconds=completion.latency_ms)).timestamp())


def failure(error: ApiError) -> dict[str, Any]:
    # ResponseError.code is a closed set in the SDK; our own codes go on the stand-alone `error` event.
    code = "rate_limit_exceeded" if error.status == 429 else "server_error"
    return {"code": code, "message": error.message}


class ResponsesStreamRenderer:
    """Canonical deltas to Responses events (reference §1.5, §3.4): one open output item at a time."""

    def __init__(self, meta: StreamMeta) -> None:
        self._meta = meta
        self._id = response_id(meta.request_id)
        self._created_at = int(meta.created_at.timestamp())
        self._sequence = 0
        self._items: list[dict[str, Any]] = []  # output items by output_index, mutated while open
        self._open: int | None = None  # output_index of the item still streaming
        self._calls: dict[int, int] = {}  # tool-call chunk index -> output_index
        self._call_count = 0
        self._messages = 0
        self._terminal = False

    def start(self) -> list[bytes]:
        if self._meta.native:
            return []
        snapshot = self._snapshot(status="in_progress", output=[], usage=None, model=self._meta.model)
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def delta(self, delta: StreamDelta) -> list[bytes]:
        if self._meta.native:
            return [self._native(delta.raw)] if delta.raw else []
        events: list[bytes] = []
        if delta.content:
            events += self._text(delta.content)
        for fragment in delta.tool_calls or []:
            events += self._tool_fragment(fragment)
        return events

    def end(self, completion: Completion) -> list[bytes]:
        if self._meta.native:
            return []
        events = self._close()
        # A result that arrived without deltas (a cache hit played back whole) still needs its items.
        if completion.content and self._messages == 0:
            events += self._text(completion.content) + self._close()
        for call in (completion.tool_calls or [])[self._call_count :]:
            function = call.get("function") or {}
            index, opened = self._open_call(call.get("id"), function.get("name") or "")
            events += opened + self._arguments(index, function.get("arguments") or "") + self._close()
        status, incomplete = status_of(completion.finish_reason)
        snapshot = self._snapshot(
            status=status,
            output=self._items,
            usage=usage_object(completion.usage),
            model=completion.model,
            incomplete_details=incomplete,
            completed_at=completed_at(completion) if status == "completed" else None,
        )
        snapshot["router"] = completion.router_facts()
        self._terminal = True
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=snapshot)]

    def fail(self, error: ApiError) -> list[bytes]:
        if self._terminal:
            return [self._event("error", code=error.code, message=error.message, param=error.param)]
        self._terminal = True
        done = [item for index, item in enumerate(self._items) if index != self._open]
        snapshot = self._snapshot(
            status="failed", output=done, usage=None, model=self._meta.model, error=failure(error)
        )
        return [self._event("response.failed", response=snapshot)]

    # -- canonical deltas --------------------------------------------------------------------------------

    def _text(self, text: str) -> list[bytes]:
        events: list[bytes] = []
        index = self._open
        if index is None or self._items[index]["type"] != "message":
            events += self._close()
            item = message_item(message_id(self._meta.request_id, self._messages), "", status="in_progress")
            part = item["content"][0]
            item["content"] = []  # the SDK appends the part that content_part.added announces
            self._messages += 1
            index = self._add(item)
            events.append(self._event("response.output_item.added", output_index=index, item=item))
            events.append(self._item_event("response.content_part.added", index, content_index=0, part=part))
            item["content"].append(part)
        self._items[index]["content"][0]["text"] += text
        events.append(
            self._item_event("response.output_text.delta", index, content_index=0, delta=text, logprobs=[])
        )
        return events

    def _tool_fragment(self, fragment: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        chunk_index = fragment.get("index", 0)
        function = fragment.get("function") or {}
        if chunk_index not in self._calls:
            self._calls[chunk_index], opened = self._open_call(fragment.get("id"), function.get("name") or "")
            events += opened
        index = self._calls[chunk_index]
        if function.get("name") and not self._items[index]["name"]:
            self._items[index]["name"] = function["name"]
        return events + self._arguments(index, function.get("arguments") or "")

    def _open_call(self, raw_id: str | None, name: str) -> tuple[int, list[bytes]]:
        events = self._close()
        seed = f"{self._meta.request_id}:{self._call_count}"  # the position render() seeds with
        self._call_count += 1
        item = function_call_item(call_id_for(raw_id, seed=seed), name, "", status="in_progress")
        index = self._add(item)
        events.append(self._event("response.output_item.added", output_index=index, item=item))
        return index, events

    def _arguments(self, index: int, fragment: str) -> list[bytes]:
        if not fragment:
            return []
        self._items[index]["arguments"] += fragment
        if index != self._open:
            # A fragment for a call already closed (chat streams calls one after another, so only a confused
            # upstream does this): its done event has gone out, the final output still gets the whole text.
            return []
        return [self._item_event("response.function_call_arguments.delta", index, delta=fragment)]

    def _add(self, item: dict[str, Any]) -> int:
        self._items.append(item)
        self._open = len(self._items) - 1
        return self._open

    def _close(self) -> list[bytes]:
        index = self._open
        if index is None:
            return []
        self._open = None
        item = self._items[index]
        item["status"] = "completed"
        events: list[bytes] = []
        if item["type"] == "message":
            part = item["content"][0]
            events.append(
                self._item_event(
                    "response.output_text.done", index, content_index=0, text=part["text"], logprobs=[]
                )
            )
            events.append(self._item_event("response.content_part.done", index, content_index=0, part=part))
        else:
            events.append(
                self._item_event(
                    "response.function_call_arguments.done",
                    index,
                    arguments=item["arguments"],
                    name=item["name"],
                )
            )
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    # -- native streams ----------------------------------------------------------------------------------

    def _native(self, raw: bytes) -> bytes:
        """The vendor's events as they came, but for the Response object's id, model and store."""
        pieces = _EVENT_SPLIT.split(raw)
        for position in range(0, len(pieces), 2):
            if pieces[position].strip():
                pieces[position] = self._native_event(pieces[position])
        return b"".join(pieces)

    def _native_event(self, block: bytes) -> bytes:
        name = ""
        data: list[bytes] = []
        for line in block.splitlines():
            if line.startswith(b"event:"):
                name = line[6:].strip().decode(errors="replace")
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
        if data:
            self._sequence += 1  # the vendor numbers from 0 too; an event of ours continues its count
        if name in _TERMINAL:
            self._terminal = True
        # Without an event: line, only a body that mentions "response" can be a lifecycle event.
        lifecycle = name in _LIFECYCLE if name else any(b'"response"' in line for line in data)
        if not data or not lifecycle:
            return block
        try:
            payload = orjson.loads(b"\n".join(data))
        except orjson.JSONDecodeError:
            return block
        response = payload.get("response") if isinstance(payload, dict) else None
        if not isinstance(response, dict):
            return block
        kind = payload.get("type", name)
        self._terminal = self._terminal or kind in _TERMINAL
        response["id"] = self._id
        response["model"] = self._meta.model
        if "store" in self._meta.door_params:
            # The client's store, not the vendor's: a continued conversation goes upstream with store:false.
            response["store"] = self._meta.door_params["store"]
        return b"event: " + str(kind).encode() + b"\ndata: " + dumps(payload)

    # -- framing -----------------------------------------------------------------------------------------

    def _snapshot(self, **fields: Any) -> dict[str, Any]:
        model = fields.pop("model")
        return response_object(
            resp_id=self._id,
            created_at=self._created_at,
            model=model,
            params=self._meta.door_params,
            **fields,
        )

    def _item_event(self, kind: str, index: int, **fields: Any) -> bytes:
        return self._event(kind, item_id=self._items[index]["id"], output_index=index, **fields)

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"
