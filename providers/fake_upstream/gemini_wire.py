"""Google Gemini generateContent wire format: candidates, usageMetadata, CRLF SSE, google.rpc errors."""

import json
from typing import Any, ClassVar

from providers.fake_upstream.answers import (
    Answer,
    Prompt,
    ResponseFormat,
    ToolResult,
    content_text,
    last_text,
)
from providers.fake_upstream.rules import Fault
from providers.fake_upstream.wire import (
    Headers,
    JsonObject,
    StreamPlan,
    WireError,
    WireFormat,
    error_defaults,
    new_id,
    optional_int,
    require_list,
    sse_data,
)

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool": "STOP"}
ROLES = {"user", "model"}
THINKING_MODEL_PREFIX = "gemini-2.5"
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
RATE_LIMIT_HELP = "https://ai.google.dev/gemini-api/docs/rate-limits"


class GeminiFormat(WireFormat):
    name = "gemini"
    # status -> (status name, message)
    errors: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
        403: ("PERMISSION_DENIED", "The caller does not have permission."),
        404: ("NOT_FOUND", "models/{model} is not found for API version v1beta."),
        429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan."),
        500: ("INTERNAL", "An internal error has occurred."),
        503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        504: ("DEADLINE_EXCEEDED", "The request timed out."),
    }

    def parse(self, body: JsonObject, path_model: str | None) -> Prompt:
        contents = require_list(body, "contents")
        for index, turn in enumerate(contents):
            if turn.get("role", "user") not in ROLES:
                raise WireError(f"Invalid value at 'contents[{index}].role': must be 'user' or 'model'")
        config = body.get("generationConfig") or {}
        if not isinstance(config, dict):
            raise WireError("Invalid value at 'generation_config'")
        system = body.get("systemInstruction")
        system_text = content_text(system.get("parts")) if isinstance(system, dict) else ""
        declarations = [
            declaration
            for tool in body.get("tools") or []
            if isinstance(tool, dict)
            for declaration in tool.get("functionDeclarations") or []
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str)
        ]
        tool_names = [declaration["name"] for declaration in declarations]
        calling = ((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}
        mode = calling.get("mode", "AUTO")
        forced: str | None = None
        if mode == "ANY" and tool_names:
            forced = (calling.get("allowedFunctionNames") or tool_names)[0]
        user_texts = [
            content_text(t.get("parts"), nested=False) for t in contents if t.get("role", "user") == "user"
        ]
        return Prompt(
            model=path_model or "",
            message_texts=[system_text] * bool(system_text)
            + [content_text(t.get("parts")) for t in contents],
            last_user_text=last_text(user_texts),
            last_is_user=contents[-1].get("role", "user") == "user" and bool(user_texts[-1]),
            tool_names=tool_names,
            tool_schemas={
                d["name"]: d.get("parametersJsonSchema", d.get("parameters")) for d in declarations
            },
            response_format=_response_format(config),
            tool_results=_tool_results(contents[-1]),
            forced_tool=forced,
            tools_disabled=mode == "NONE",
            max_tokens=optional_int(config, "maxOutputTokens"),
        )

    def usage(self, answer: Answer, candidates_tokens: int) -> JsonObject:
        usage: JsonObject = {
            "promptTokenCount": answer.prompt_tokens,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": answer.prompt_tokens + candidates_tokens + answer.reasoning_tokens,
            "cachedContentTokenCount": answer.cached_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.prompt_tokens}],
        }
        if answer.reasoning_tokens or answer.model.startswith(THINKING_MODEL_PREFIX):
            usage["thoughtsTokenCount"] = answer.reasoning_tokens
        return usage

    def response(self, answer: Answer, prompt: Prompt) -> tuple[JsonObject, Headers]:
        if answer.is_tool_call:
            parts: list[JsonObject] = [
                {"functionCall": {"name": answer.tool_name, "args": answer.tool_arguments}}
            ]
        else:
            parts = [{"text": answer.text}] if answer.text else []
        payload = self._chunk(answer, new_id(length=22), parts, answer.finish, answer.output_tokens)
        return payload, []

    def stream(self, answer: Answer, prompt: Prompt) -> StreamPlan:
        response_id = new_id(length=22)
        if answer.is_tool_call:
            # Gemini sends a function call whole, in one chunk.
            call = {"functionCall": {"name": answer.tool_name, "args": answer.tool_arguments}}
            return StreamPlan(
                content=[self._frame(self._chunk(answer, response_id, [call], "tool", answer.output_tokens))]
            )
        content: list[bytes] = []
        words_so_far = 0
        pieces = answer.pieces
        for index, piece in enumerate(pieces):
            words_so_far += len(piece.split())
            last = index == len(pieces) - 1
            # Each chunk counts the words so far; the last one carries the final count, as Gemini's does.
            tokens = answer.output_tokens if last else min(words_so_far, answer.output_tokens)
            finish = answer.finish if last else None
            content.append(self._frame(self._chunk(answer, response_id, [{"text": piece}], finish, tokens)))
        if not content:  # nothing to say (maxOutputTokens 0): one final chunk without parts
            content.append(
                self._frame(self._chunk(answer, response_id, [], answer.finish, answer.output_tokens))
            )
        return StreamPlan(content=content)

    def error(self, status: int, message: str, model: str, fault: Fault) -> tuple[JsonObject, Headers]:
        status_name, default_message = error_defaults(self.errors, status)
        details: list[JsonObject] = []
        if status == 429:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": QUOTA_METRIC,
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": model},
                        }
                    ],
                }
            )
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMIT_HELP}],
                }
            )
        if fault.retry_after is not None:
            # Gemini tells the wait in the body, not in a Retry-After header.
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{fault.retry_after:g}s"}
            )
        error: dict[str, Any] = {
            "code": status,
            "message": message or default_message.format(model=model),
            "status": fault.error_type or status_name,
        }
        if details:
            error["details"] = details
        return {"error": error}, []

    def _chunk(
        self,
        answer: Answer,
        response_id: str,
        parts: list[JsonObject],
        finish: str | None,
        candidates_tokens: int,
    ) -> JsonObject:
        content: JsonObject = {"role": "model"}
        if parts:
            content["parts"] = parts
        candidate: JsonObject = {"content": content}
        if finish is not None:
            candidate["finishReason"] = FINISH_REASONS[finish]
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": self.usage(answer, candidates_tokens),
            "modelVersion": answer.model,
            "responseId": response_id,
        }

    @staticmethod
    def _frame(payload: JsonObject) -> bytes:
        return sse_data(payload, newline=b"\r\n")


def _response_format(config: JsonObject) -> ResponseFormat | None:
    """`responseMimeType: application/json`, with `responseJsonSchema` or `responseSchema` if one is given."""
    if config.get("responseMimeType") != "application/json":
        return None
    schema = config.get("responseJsonSchema", config.get("responseSchema"))
    return (
        ResponseFormat("json_schema", schema) if isinstance(schema, dict) else ResponseFormat("json_object")
    )


def _tool_results(turn: JsonObject) -> list[ToolResult]:
    """The functionResponse parts of the last turn; a lone text field of the response is the result's text."""
    results = []
    for part in turn.get("parts") or []:
        response = part.get("functionResponse") if isinstance(part, dict) else None
        if not isinstance(response, dict):
            continue
        value = response.get("response")
        if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), str):
            text = next(iter(value.values()))
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        results.append(ToolResult(str(response.get("name") or ""), text))
    return results
