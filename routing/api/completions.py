"""POST /v1/chat/completions: the chat door through the shared door view."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from config.api_errors import api_methods
from routing.api.doors import serve_door
from routing.doors.chat import CHAT


@csrf_exempt
@api_methods("POST")
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    return await serve_door(CHAT, request, span="chat.completion")
