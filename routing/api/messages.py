"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages door (any catalog model)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from accounts.authentication import aprincipal_for_key, key_from_headers
from config.api_errors import ApiError, InvalidRequest, api_methods, internal_error
from config.rendering import dumps
from providers.catalog import acatalog_get
from providers.token_encodings import encodings_ready
from providers.tokens import count_message_tokens, encodings_for
from routing.api.body import parse_json_body
from routing.api.doors import door_error_response, serve_door
from routing.doors.messages import MessagesDoor, count_tokens_input
from routing.pipeline.types import Caller, CompletionInput

MESSAGES = MessagesDoor()


def _require_version(request: HttpRequest) -> None:
    # Anthropic's API refuses a request without it; so do we, so a client that works here works there.
    if not request.headers.get("anthropic-version"):
        raise InvalidRequest("anthropic-version: header is required", param="anthropic-version")


@csrf_exempt
@api_methods("POST")
async def messages_create(request: HttpRequest) -> HttpResponseBase:
    async def versioned(inp: CompletionInput, caller: Caller) -> CompletionInput:
        _require_version(request)  # after authentication: a bad key is a 401 whatever else is missing
        return inp

    return await serve_door(MESSAGES, request, span="messages.create", prepare=versioned)


@csrf_exempt
@api_methods("POST")
async def messages_count_tokens(request: HttpRequest) -> HttpResponseBase:
    request_id: str = request.request_id  # type: ignore[attr-defined]
    try:
        await aprincipal_for_key(key_from_headers(request))
        _require_version(request)
        body = parse_json_body(request)
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
        counted = count_tokens_input(body)
        catalog = await acatalog_get()
        model = catalog.by_name(counted.model)
        if model is None:
            raise InvalidRequest(
                f"Model '{counted.model}' not found or inactive", param="model", code="model_not_found"
            )
        await encodings_ready(encodings_for([(model.model_id, model.provider)]))  # a first use: off the loop
        tokens = count_message_tokens(counted.messages, model.model_id, model.provider, tools=counted.tools)
        return HttpResponse(dumps({"input_tokens": tokens.tokens}), content_type="application/json")
    except ApiError as exc:
        return door_error_response(MESSAGES, exc, request_id)
    except Exception as exc:  # noqa: BLE001 - a bug still answers in the door's envelope
        return door_error_response(MESSAGES, internal_error(exc), request_id)
