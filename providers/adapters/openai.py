"""OpenAI Chat Completions adapter: the request passes through nearly as-is; DeepSeek builds on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from providers.adapters import openai_responses
from providers.adapters.base import ChatRequest, ChatResult, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.calls import post_json, stream_sse
from providers.adapters.common import drop_none, int_of, map_finish_reason, tool_call
from providers.adapters.errors import error_from_body, incomplete_stream_error
from providers.adapters.native import forwarded_headers
from providers.adapters.sse import RAW_EVENT, SSEEvent, decode_stream, loads_event

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}


class OpenAIAdapter:
    """Speaks the Chat Completions wire format. Subclasses adjust the hooks, not the call flow."""

    name = "openai"
    default_base_url = "https://api.openai.com/v1"  # the SDK convention: the base includes /v1
    # OpenAI deprecated max_tokens, and reasoning models reject it (§1.2).
    max_tokens_field = "max_completion_tokens"
    finish_reasons: Mapping[str, str] = FINISH_REASONS

    # --- request ------------------------------------------------------------------------------------------

    def url(self, config: ProviderConfig) -> str:
        return f"{(config.base_url or self.default_base_url).rstrip('/')}/chat/completions"

    def headers(self, config: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        return headers

    def goes_native(self, request: ChatRequest) -> bool:
        """Whether the client's Responses body goes to OpenAI's /responses as it is.

        Only OpenAI has the Responses API; OpenAI-format vendors built on this class (DeepSeek) always get
        the translated chat request, whatever the router left in `request.native`.
        """
        return request.native is not None and self.name == OpenAIAdapter.name

    def responses_url(self, config: ProviderConfig) -> str:
        return f"{(config.base_url or self.default_base_url).rstrip('/')}/responses"

    def native_headers(self, config: ProviderConfig, request: ChatRequest) -> dict[str, str]:
        return {**self.headers(config), **forwarded_headers(request.native_headers)}

    def translate_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(message) for message in messages]

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = drop_none(
            {
                "model": request.model,
                "messages": self.translate_messages(request.messages),
                self.max_tokens_field: request.max_tokens,
                "temperature": request.temperature,
                "top_p": request.top_p,
                "stop": request.stop or None,
                "seed": request.seed,
                "user": request.user,
                "tools": request.tools or None,
                "tool_choice": request.tool_choice,
                "response_format": request.response_format,
            }
        )
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    # --- response -----------------------------------------------------------------------------------------

    def parse_usage(self, raw: Mapping[str, Any]) -> Usage:
        prompt_details = raw.get("prompt_tokens_details") or {}
        completion_details = raw.get("completion_tokens_details") or {}
        return Usage(
            prompt_tokens=int_of(raw.get("prompt_tokens")),
            completion_tokens=int_of(raw.get("completion_tokens")),
            cached_tokens=int_of(prompt_details.get("cached_tokens")),
            reasoning_tokens=int_of(completion_details.get("reasoning_tokens")),
        )

    def finish_reason(self, native: str | None) -> str:
        return map_finish_reason(self.name, native, self.finish_reasons)

    def finish_failure(self, native: str | None, usage: Usage | None) -> ProviderError | None:
        """The error a vendor finish reason stands for, when it means the answer was cut off by a failure."""
        return None

    def parse_response(self, payload: Mapping[str, Any]) -> ChatResult:
        choices = payload.get("choices") or []
        if not choices:
            raise ProviderError(
                f"{self.name}: response has no choices",
                status=200,
                retryable=True,
                kind="protocol",
                extra={"provider": self.name, "category": "protocol"},
            )
        choice = choices[0]
        message = choice.get("message") or {}
        usage = self.parse_usage(payload.get("usage") or {})
        if failure := self.finish_failure(choice.get("finish_reason"), usage):
            raise failure
        tool_calls = [
            tool_call(
                call.get("id", ""), call["function"].get("name", ""), call["function"].get("arguments", "")
            )
            for call in message.get("tool_calls") or []
            if isinstance(call.get("function"), Mapping)
        ]
        return ChatResult(
            content=message.get("content"),
            finish_reason=self.finish_reason(choice.get("finish_reason")),
            usage=usage,
            tool_calls=tool_calls or None,
            upstream_model=payload.get("model"),
        )

    # --- calls --------------------------------------------------------------------------------------------

    async def complete(self, config: ProviderConfig, request: ChatRequest) -> ChatResult:
        if self.goes_native(request):
            return await openai_responses.complete(
                config, self.responses_url(config), self.native_headers(config, request), request
            )
        payload = await post_json(
            config, self.url(config), self.headers(config), self.build_body(request, stream=False)
        )
        return self.parse_response(payload)

    async def stream(self, config: ProviderConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        if self.goes_native(request):
            deltas = openai_responses.stream(
                config, self.responses_url(config), self.native_headers(config, request), request
            )
        else:
            events = stream_sse(
                config, self.url(config), self.headers(config), self.build_body(request, stream=True)
            )
            deltas = decode_stream(events, ChatCompletionsStreamDecoder(self))
        async for delta in deltas:
            yield delta


class ChatCompletionsStreamDecoder:
    """`data: {chunk}` lines ending in `data: [DONE]`; usage arrives on a chunk of its own (or the last)."""

    def __init__(self, adapter: OpenAIAdapter) -> None:
        self.adapter = adapter
        self.done = False
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.native_finish: str | None = None

    def feed(self, event: SSEEvent) -> Iterable[StreamDelta]:
        if event.event == RAW_EVENT:
            return []
        if event.data.startswith("[DONE]"):
            self.done = True
            return []
        chunk = loads_event(self.adapter.name, event.data)
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            raise error_from_body(self.adapter.name, status=None, payload=chunk, extra={"mid_stream": True})
        if isinstance(chunk.get("usage"), Mapping):
            self.usage = self.adapter.parse_usage(chunk["usage"])
        deltas: list[StreamDelta] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") or None
            tool_calls = delta.get("tool_calls") or None
            if content is not None or tool_calls is not None:
                deltas.append(StreamDelta(content=content, tool_calls=tool_calls))
            if choice.get("finish_reason"):
                self.native_finish = choice["finish_reason"]
                # A finish that stands for a failure is raised at the end, once the usage chunk has arrived.
                if self.adapter.finish_failure(self.native_finish, None) is None:
                    self.finish = self.adapter.finish_reason(self.native_finish)
                    deltas.append(StreamDelta(finish_reason=self.finish))
        return deltas

    def close(self) -> Iterable[StreamDelta]:
        if failure := self.adapter.finish_failure(self.native_finish, self.usage):
            raise failure
        if self.finish is None:
            raise incomplete_stream_error(self.adapter.name)
        return [StreamDelta(usage=self.usage)] if self.usage is not None else []
