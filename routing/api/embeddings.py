"""POST /v1/embeddings: the embeddings door, through the shared door view and the embeddings entry point."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from config.api_errors import api_methods
from config.rendering import dumps
from routing.api.doors import serve_parsed, with_headers
from routing.doors.embeddings import EMBEDDINGS
from routing.pipeline.embed import embeddings_create
from routing.pipeline.types import Caller, CompletionInput


async def _answer(inp: CompletionInput, caller: Caller, request_id: str) -> HttpResponseBase:
    assert inp.embedding is not None
    answered = await embeddings_create(caller=caller, inp=inp, request_id=request_id)
    body = EMBEDDINGS.render(answered.embeddings, inp.embedding.encoding_format)
    return with_headers(HttpResponse(dumps(body), content_type="application/json"), answered.headers)


@csrf_exempt
@api_methods("POST")
async def embeddings(request: HttpRequest) -> HttpResponseBase:
    return await serve_parsed(EMBEDDINGS, request, span="embeddings.create", answer=_answer)
