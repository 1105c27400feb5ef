"""OpenAI Responses API for native requests: the client's /v1/responses body to {base}/responses, and back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from providers.adapters.base import ChatRequest, ChatResult, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.calls import post_json, stream_sse
from providers.adapters.common import int_of, map_finish_reason, tool_call, tool_call_delta
from providers.adapters.errors import error_from_body, incomplete_stream_error
from providers.adapters.native import PassThroughDecoder, native_body
from providers.adapters.sse import RAW_EVENT, SSEEvent, decode_stream, loads_event

INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete"})
# A failed response carries only `error.code`; the status the same failure has over HTTP lets the usual
# classification decide retries (a rate limit waits, a bad prompt does not retry).
ERROR_CODE_STATUS = {
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "invalid_prompt": 400,
    "invalid_image": 400,
    "invalid_image_format": 400,
}


def build_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    return native_body(request, max_tokens_field="max_output_tokens", stream=stream)


def parse_usage(raw: Mapping[str, Any]) -> Usage:
    """`input_tokens` already include cached ones and `output_tokens` reasoning ones: OpenAI's own meaning.

    `input_tokens_details.cache_write_tokens` is left out: OpenAI does not bill cache writes.
    """
    input_details = raw.get("input_tokens_details") or {}
    output_details = raw.get("output_tokens_details") or {}
    return Usage(
        prompt_tokens=int_of(raw.get("input_tokens")),
        completion_tokens=int_of(raw.get("output_tokens")),
        cached_tokens=int_of(input_details.get("cached_tokens")),
        reasoning_tokens=int_of(output_details.get("reasoning_tokens")),
    )


def finish_reason(provider: str, response: Mapping[str, Any], *, has_tool_calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return map_finish_reason(provider, reason, INCOMPLETE_REASONS)
    return "tool_calls" if has_tool_calls else "stop"


def failure(provider: str, error: Any, *, mid_stream: bool) -> ProviderError:
    """A `response.failed` error object or a stand-alone `error` event as a classified ProviderError."""
    error = error if isinstance(error, Mapping) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    payload = {"error": {"message": error.get("message"), "code": code, "param": error.get("param")}}
    return error_from_body(
        provider,
        status=ERROR_CODE_STATUS.get(code or ""),
        payload=payload,
        extra={"mid_stream": True} if mid_stream else None,
    )


def parse_response(provider: str, payload: Mapping[str, Any]) -> ChatResult:
    """A Response object as a ChatResult for accounting; `raw` keeps the body for the client."""
    if payload.get("status") == "failed":
        raise failure(provider, payload.get("error"), mid_stream=False)
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for item in payload.get("output") or []:
        if item.get("type") == "message":
            texts.extend(
                part.get("text", "")
                for part in item.get("content") or []
                if part.get("type") == "output_text"
            )
        elif item.get("type") == "function_call":
            # call_id, not the fc_ item id: it is what a tool result refers to, and short enough for chat.
            tool_calls.append(
                tool_call(item.get("call_id", ""), item.get("name", ""), item.get("arguments", ""))
            )
    return ChatResult(
        content="".join(texts) if texts else None,
        finish_reason=finish_reason(provider, payload, has_tool_calls=bool(tool_calls)),
        usage=parse_usage(payload.get("usage") or {}),
        tool_calls=tool_calls or None,
        upstream_model=payload.get("model"),
        raw=dict(payload),
    )


class ResponsesStreamDecoder:
    """The §1.5 events: text deltas, function-call items and their argument deltas, one terminal event."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False
        self.usage: Usage | None = None
        self._tools: dict[int, int] = {}  # output_index → OpenAI tool-call index
        self._item_outputs: dict[str, int] = {}  # item id → output_index
        self._arguments: dict[int, str] = {}  # tool-call index → arguments streamed so far
        self._finished = False

    def feed(self, event: SSEEvent) -> Iterable[StreamDelta]:
        if event.event == RAW_EVENT:
            return []
        data = loads_event(self.provider, event.data)
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.event
        if kind == "response.output_text.delta" and data.get("delta"):
            return [StreamDelta(content=str(data["delta"]))]
        if kind == "response.output_item.added":
            return self._item_added(int_of(data.get("output_index")), data.get("item") or {})
        if kind == "response.function_call_arguments.delta":
            return self._arguments_delta(data, str(data.get("delta") or ""))
        if kind == "response.function_call_arguments.done":
            return self._arguments_done(data, str(data.get("arguments") or ""))
        if kind in TERMINAL_EVENTS:
            return self._terminal(data.get("response") or {})
        if kind == "response.failed":
            response = data.get("response") or {}
            self._take_usage(response)
            raise failure(self.provider, response.get("error"), mid_stream=True)
        if kind == "error" or isinstance(data.get("error"), Mapping):
            raise failure(self.provider, data.get("error") or data, mid_stream=True)
        return []

    def _item_added(self, output_index: int, item: Mapping[str, Any]) -> list[StreamDelta]:
        if item.get("id"):
            self._item_outputs[str(item["id"])] = output_index
        if item.get("type") != "function_call":
            return []
        position = self._tools[output_index] = len(self._tools)
        arguments = str(item.get("arguments") or "")
        self._arguments[position] = arguments
        call = tool_call_delta(position, item.get("call_id", ""), item.get("name", ""), arguments)
        return [StreamDelta(tool_calls=[call])]

    def _position(self, data: Mapping[str, Any]) -> int | None:
        output_index = data.get("output_index")
        if not isinstance(output_index, int):
            output_index = self._item_outputs.get(str(data.get("item_id")))
        return self._tools.get(output_index) if output_index is not None else None

    def _arguments_delta(self, data: Mapping[str, Any], fragment: str) -> list[StreamDelta]:
        position = self._position(data)
        if position is None or not fragment:
            return []
        self._arguments[position] += fragment
        return [StreamDelta(tool_calls=[{"index": position, "function": {"arguments": fragment}}])]

    def _arguments_done(self, data: Mapping[str, Any], arguments: str) -> list[StreamDelta]:
        # Some servers send a call whole, in the done event only: pass on what the deltas did not carry.
        position = self._position(data)
        if position is None:
            return []
        sent = self._arguments[position]
        if len(arguments) <= len(sent) or not arguments.startswith(sent):
            return []
        return self._arguments_delta(data, arguments[len(sent) :])

    def _take_usage(self, response: Mapping[str, Any]) -> None:
        if isinstance(response.get("usage"), Mapping):
            self.usage = parse_usage(response["usage"])

    def _terminal(self, response: Mapping[str, Any]) -> list[StreamDelta]:
        self.done = True
        self._finished = True
        self._take_usage(response)
        finish = finish_reason(self.provider, response, has_tool_calls=bool(self._tools))
        deltas = [StreamDelta(finish_reason=finish)]
        if self.usage is not None:
            deltas.append(StreamDelta(usage=self.usage))
        return deltas

    def close(self) -> Iterable[StreamDelta]:
        if not self._finished:
            raise incomplete_stream_error(self.provider)
        return []


async def complete(
    config: ProviderConfig, url: str, headers: Mapping[str, str], request: ChatRequest
) -> ChatResult:
    payload = await post_json(config, url, headers, build_body(request, stream=False))
    return parse_response(config.name, payload)


async def stream(
    config: ProviderConfig, url: str, headers: Mapping[str, str], request: ChatRequest
) -> AsyncIterator[StreamDelta]:
    events = stream_sse(config, url, headers, build_body(request, stream=True))
    decoder = PassThroughDecoder(ResponsesStreamDecoder(config.name))
    async for delta in decode_stream(events, decoder):
        yield delta
