"""POST /v1/responses, GET and DELETE /v1/responses/{id}: the OpenAI Responses door (any catalog model)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from accounts.authentication import aprincipal_for_key, key_from_headers
from config.api_errors import InvalidRequest, NotFound, api_methods
from config.rendering import dumps
from routing.api.doors import serve_door
from routing.doors.responses import ResponsesDoor, continue_from
from routing.doors.responses_stream import request_id_of
from routing.pipeline.types import Caller, CompletionInput
from routing.services.stored_responses import (
    astored_response_forget,
    astored_response_get,
    completion_of_row,
    previous_turns,
)

RESPONSES = ResponsesDoor()


async def _with_previous(inp: CompletionInput, caller: Caller) -> CompletionInput:
    """previous_response_id: the conversation is rebuilt from our own log, for whichever vendor answers."""
    previous = inp.door_params.get("previous_response_id")
    if not previous:
        return inp
    request_id = request_id_of(previous)
    row = await astored_response_get(user_id=caller.user_id, request_id=request_id) if request_id else None
    if row is None:
        raise InvalidRequest(
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    messages, output = previous_turns(row)
    return continue_from(inp, messages, output)


@csrf_exempt
@api_methods("POST")
async def responses_create(request: HttpRequest) -> HttpResponseBase:
    return await serve_door(RESPONSES, request, span="responses.create", prepare=_with_previous)


@csrf_exempt
@api_methods("GET", "DELETE")
async def response_detail(request: HttpRequest, response_id: str) -> HttpResponseBase:
    principal = await aprincipal_for_key(key_from_headers(request))
    request_id = request_id_of(response_id)
    missing = NotFound(f"Response with id '{response_id}' not found.", code="response_not_found")
    if request_id is None:
        raise missing
    if request.method == "DELETE":
        if not await astored_response_forget(user_id=principal.user_id, request_id=request_id):
            raise missing
        body = {"id": response_id, "object": "response", "deleted": True}
        return HttpResponse(dumps(body), content_type="application/json")
    row = await astored_response_get(user_id=principal.user_id, request_id=request_id)
    if row is None:
        raise missing
    return HttpResponse(dumps(RESPONSES.render(completion_of_row(row))), content_type="application/json")
