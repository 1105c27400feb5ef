"""The fake upstream's raw ASGI app: vendor routes, request recording, fault injection, control API."""

import asyncio
import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from providers.fake_upstream.answers import compose_answer
from providers.fake_upstream.anthropic_wire import AnthropicFormat
from providers.fake_upstream.embeddings_wire import EmbeddingFormat, GeminiEmbeddings, OpenAIEmbeddings
from providers.fake_upstream.gemini_wire import GeminiFormat
from providers.fake_upstream.openai_wire import DeepSeekFormat, OpenAIFormat
from providers.fake_upstream.responses_wire import ResponsesFormat
from providers.fake_upstream.rules import NO_FAULT, Fault, RuleBook, RuleError, parse_rule
from providers.fake_upstream.wire import Headers, StreamPlan, WireError, WireFormat

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RECORDED_REQUESTS = 1000
AUTH_HEADERS = frozenset(
    {b"authorization", b"proxy-authorization", b"x-api-key", b"x-goog-api-key", b"api-key"}
)
AUTH_QUERY_KEYS = frozenset({"key"})
MASK = "***"
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/")
GEMINI_ACTIONS = {"generateContent": False, "streamGenerateContent": True}
GEMINI_EMBED_ACTIONS = ("embedContent", "batchEmbedContents")

OPENAI, DEEPSEEK, ANTHROPIC, GEMINI = OpenAIFormat(), DeepSeekFormat(), AnthropicFormat(), GeminiFormat()
RESPONSES = ResponsesFormat()
OPENAI_EMBEDDINGS, GEMINI_EMBEDDINGS = OpenAIEmbeddings(), GeminiEmbeddings()
FIXED_ROUTES: dict[str, WireFormat] = {
    "/v1/chat/completions": OPENAI,
    "/v1/responses": RESPONSES,
    "/chat/completions": DEEPSEEK,
    "/v1/messages": ANTHROPIC,
}


@dataclass(slots=True)
class Route:
    wire: WireFormat
    path_model: str | None = None  # Gemini names the model in the path
    stream: bool = False  # Gemini's streamGenerateContent
    embed: EmbeddingFormat | None = None  # an embeddings route (`wire` renders its errors)
    action: str | None = None  # Gemini's embedContent or batchEmbedContents


EMBEDDING_ROUTES = {"/v1/embeddings": Route(OPENAI, embed=OPENAI_EMBEDDINGS)}


@dataclass(slots=True)
class Received:
    """One recorded vendor request, kept raw; rendering (and masking) happens when someone asks."""

    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: Any
    model: str
    wire: str

    def as_dict(self) -> dict[str, Any]:
        headers = {
            name.decode("latin-1").lower(): MASK if name.lower() in AUTH_HEADERS else value.decode("latin-1")
            for name, value in self.headers
        }
        query = [(k, MASK if k in AUTH_QUERY_KEYS else v) for k, v in parse_qsl(self.query.decode("latin-1"))]
        return {
            "path": self.path,
            "query": urlencode(query, safe="*"),
            "headers": headers,
            "body": self.body,
            "model": self.model,
            "format": self.wire,
        }


class FakeUpstream:
    """An ASGI3 application answering the four vendors' APIs, with state for faults and recordings.

    Vendor routes (POST): /v1/chat/completions (OpenAI; DeepSeek format for "deepseek*" models),
    /v1/responses (OpenAI Responses API, recorded as format "openai-responses"),
    /chat/completions (DeepSeek), /v1/messages (Anthropic),
    /v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse (Gemini),
    /v1/embeddings (OpenAI, "openai-embeddings"), /v1beta/models/{model}:embedContent and
    :batchEmbedContents (Gemini, "gemini-embeddings"): deterministic vectors, see embeddings_wire.py.
    Control: GET /health; POST, GET, DELETE /__control (rules, see `rules.py`; DELETE also forgets
    recordings); GET, DELETE /__requests (last 1000, auth masked, optional ?model=); GET /__stats.
    """

    def __init__(self) -> None:
        self.rules = RuleBook()
        self.received: deque[Received] = deque(maxlen=RECORDED_REQUESTS)
        self.counts: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        route = _route(path)
        if route is not None:
            if method != "POST":
                await send_json(send, 405, {"error": "method not allowed"})
                return
            await self.serve_vendor(route, scope, await read_body(receive), send)
        else:
            await self.serve_control(method, path, scope, receive, send)

    async def serve_vendor(self, route: Route, scope: Scope, raw: bytes, send: Send) -> None:
        wire = route.wire
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        model = route.path_model or (body.get("model") if isinstance(body, dict) else None) or ""
        if not isinstance(model, str):
            model = ""
        if wire is OPENAI and model.startswith("deepseek"):
            wire = DEEPSEEK  # DeepSeek also serves the OpenAI-style /v1 base URL
        recorded = route.embed.name if route.embed is not None else wire.name
        self.record(scope, body if body is not None else raw.decode("utf-8", "replace"), model, recorded)
        if route.embed is not None:
            await self.serve_embeddings(route, route.embed, body, model, send)
            return
        try:
            if not isinstance(body, dict):
                raise WireError("the request body is not a JSON object")
            if route.stream and b"alt=sse" not in scope["query_string"]:
                raise WireError("the fake upstream streams only with alt=sse")
            prompt = wire.parse(body, route.path_model)
        except WireError as refused:
            payload, headers = wire.error(refused.status, refused.message, model, NO_FAULT)
            await send_json(send, refused.status, payload, headers)
            return
        prompt.stream = prompt.stream or route.stream

        fault = self.rules.fire(model)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.is_error:
            payload, headers = wire.error(fault.status, fault.message or "", model, fault)
            await send_json(send, fault.status, payload, headers)
            return
        answer = compose_answer(prompt, fault)
        if prompt.stream:
            await send_stream(send, wire.stream(answer, prompt), fault)
            return
        payload, headers = wire.response(answer, prompt)
        if fault.disconnect_after_chunks is not None:
            await send_broken_json(send, payload, headers)
        else:
            await send_json(send, 200, payload, headers)

    async def serve_embeddings(
        self, route: Route, embed: EmbeddingFormat, body: Any, model: str, send: Send
    ) -> None:
        wire = route.wire
        try:
            if not isinstance(body, dict):
                raise WireError("the request body is not a JSON object")
            ask = embed.parse(body, route.path_model, route.action)
        except WireError as refused:
            payload, headers = wire.error(refused.status, refused.message, model, NO_FAULT)
            await send_json(send, refused.status, payload, headers)
            return
        fault = self.rules.fire(model)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.is_error:
            payload, headers = wire.error(fault.status, fault.message or "", model, fault)
            await send_json(send, fault.status, payload, headers)
            return
        payload = embed.response(ask, route.action)
        if fault.disconnect_after_chunks is not None:
            await send_broken_json(send, payload, [])
        else:
            await send_json(send, 200, payload)

    def record(self, scope: Scope, body: Any, model: str, wire: str) -> None:
        self.received.append(
            Received(scope["path"], scope["query_string"], scope["headers"], body, model, wire)
        )
        self.counts[model] += 1

    def reset_recordings(self) -> None:
        self.received.clear()
        self.counts.clear()

    async def serve_control(self, method: str, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (method, path)
        if endpoint == ("GET", "/health"):
            await send_json(send, 200, {"ok": True})
        elif endpoint == ("POST", "/__control"):
            await self.add_rules(await read_body(receive), send)
        elif endpoint == ("GET", "/__control"):
            await send_json(send, 200, {"rules": self.rules.as_list()})
        elif endpoint == ("DELETE", "/__control"):
            self.rules.clear()
            self.reset_recordings()
            await send_json(send, 200, {"ok": True})
        elif endpoint == ("GET", "/__requests"):
            wanted = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("model")
            await send_json(
                send, 200, [r.as_dict() for r in self.received if wanted is None or r.model == wanted]
            )
        elif endpoint == ("DELETE", "/__requests"):
            self.reset_recordings()
            await send_json(send, 200, {"ok": True})
        elif endpoint == ("GET", "/__stats"):
            await send_json(send, 200, {"total": sum(self.counts.values()), "models": dict(self.counts)})
        elif path in {"/health", "/__control", "/__requests", "/__stats"}:
            await send_json(send, 405, {"error": "method not allowed"})
        else:
            await send_json(send, 404, {"error": f"no route for {method} {path}"})

    async def add_rules(self, raw: bytes, send: Send) -> None:
        try:
            data = orjson.loads(raw)
            rules = [parse_rule(item) for item in (data if isinstance(data, list) else [data])]
        except (orjson.JSONDecodeError, RuleError) as invalid:
            await send_json(send, 400, {"error": str(invalid)})
            return
        for rule in rules:
            self.rules.add(rule)
        await send_json(send, 200, {"ok": True, "rules": self.rules.as_list()})


def _route(path: str) -> Route | None:
    wire = FIXED_ROUTES.get(path)
    if wire is not None:
        return Route(wire)
    if path in EMBEDDING_ROUTES:
        return EMBEDDING_ROUTES[path]
    if path.startswith(GEMINI_PREFIXES):
        model, _, action = path.partition("/models/")[2].rpartition(":")
        if model and action in GEMINI_ACTIONS:
            return Route(GEMINI, path_model=model, stream=GEMINI_ACTIONS[action])
        if model and action in GEMINI_EMBED_ACTIONS:
            return Route(GEMINI, path_model=model, embed=GEMINI_EMBEDDINGS, action=action)
    return None


async def read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def send_json(
    send: Send, status: int, payload: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = orjson.dumps(payload)
    await _start_json(send, status, len(body), headers)
    await send({"type": "http.response.body", "body": body})


async def send_broken_json(send: Send, payload: Any, headers: Headers) -> None:
    """Announce the whole body, send half, and return unfinished: the server drops the connection."""
    body = orjson.dumps(payload)
    await _start_json(send, 200, len(body), headers)
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})


async def _start_json(send: Send, status: int, length: int, headers: Sequence[tuple[bytes, bytes]]) -> None:
    content_length = (b"content-length", str(length).encode())
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON_HEADERS, content_length, *headers],
        }
    )


async def send_stream(send: Send, plan: StreamPlan, fault: Fault) -> None:
    """One send per event; with `disconnect_after_chunks`, return unfinished so the server drops the line."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    for event in plan.head:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    chunk_delay = fault.chunk_delay_ms / 1000
    cut = fault.disconnect_after_chunks
    for index, event in enumerate(plan.content):
        if cut is not None and index >= cut:
            return
        if chunk_delay and index:
            await _wait_between_chunks(send, chunk_delay, fault.keepalive_ms / 1000)
        await send({"type": "http.response.body", "body": event, "more_body": True})
    if cut is not None:
        return
    for event in plan.tail:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_between_chunks(send: Send, delay: float, keepalive: float) -> None:
    """Sleep `delay` seconds; with `keepalive`, send an SSE comment that often meanwhile: one at each whole
    interval strictly inside the wait (five in 300 ms at 50 ms), however late the loop wakes. (Sleeping for
    "what is left" and sending while any was left spun in the last millisecond, where the loop's clock stands
    still between iterations: 48 comments in one 300 ms wait on a busy machine.)"""
    if keepalive <= 0:
        await asyncio.sleep(delay)
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + delay
    beats = max(math.ceil(delay / keepalive) - 1, 0)
    for beat in range(1, beats + 1):
        await asyncio.sleep(max(start + beat * keepalive - loop.time(), 0))
        await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
    await asyncio.sleep(max(deadline - loop.time(), 0))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


app = FakeUpstream()
