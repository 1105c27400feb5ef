"""DeepSeek adapter: OpenAI's wire format with string-only content, its own cache usage and finish reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.adapters.base import ChatRequest, ProviderError, Usage
from providers.adapters.common import content_parts, int_of, is_system, text_of, unsupported_content
from providers.adapters.openai import FINISH_REASONS, OpenAIAdapter

# Inference cut off for lack of capacity: the answer is truncated, so it is a retryable failure (§4.3).
INSUFFICIENT_SYSTEM_RESOURCE = "insufficient_system_resource"


class DeepSeekAdapter(OpenAIAdapter):
    name = "deepseek"
    default_base_url = "https://api.deepseek.com"  # no /v1: POST {base}/chat/completions
    max_tokens_field = "max_tokens"
    finish_reasons = FINISH_REASONS

    def translate_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        translated = []
        for message in messages:
            message = dict(message)
            if is_system(message):
                message["role"] = "system"
            content = message.get("content")
            if isinstance(content, list):
                # Text models take string content only (§7.7); an image would be silently lost.
                for part in content_parts(content):
                    if part.get("type") != "text":
                        raise unsupported_content(self.name, part.get("type"))
                message["content"] = text_of(content)
            translated.append(message)
        return translated

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().build_body(request, stream=stream)
        # Undocumented on DeepSeek (§4.2): strip rather than risk a 400.
        body.pop("seed", None)
        body.pop("user", None)
        if "tools" in body:
            body["tools"] = [tool for tool in body["tools"] if tool.get("type", "function") == "function"]
            if not body["tools"]:
                del body["tools"]
                body.pop("tool_choice", None)
        if (body.get("response_format") or {}).get("type") == "json_schema":
            # DeepSeek has JSON mode but no structured outputs.
            body["response_format"] = {"type": "json_object"}
        return body

    def parse_usage(self, raw: Mapping[str, Any]) -> Usage:
        """prompt_tokens = prompt_cache_hit_tokens + prompt_cache_miss_tokens; the hits are the cached part."""
        usage = super().parse_usage(raw)
        hits, misses = raw.get("prompt_cache_hit_tokens"), raw.get("prompt_cache_miss_tokens")
        if isinstance(hits, int) and not isinstance(hits, bool):
            usage.cached_tokens = hits
            if not isinstance(raw.get("prompt_tokens"), int) and isinstance(misses, int):
                usage.prompt_tokens = hits + int_of(misses)
        return usage

    def finish_failure(self, native: str | None, usage: Usage | None) -> ProviderError | None:
        if native != INSUFFICIENT_SYSTEM_RESOURCE:
            return None
        return ProviderError(
            f"{self.name}: inference cut off ({INSUFFICIENT_SYSTEM_RESOURCE})",
            status=None,
            retryable=True,
            kind="protocol",
            extra={
                "provider": self.name,
                "category": "overloaded",
                "native_finish_reason": native,
                "usage": usage,
            },
        )
