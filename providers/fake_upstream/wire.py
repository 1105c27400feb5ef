"""What every vendor wire format provides, plus the framing and id helpers they share."""

import random
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import orjson

from providers.fake_upstream.answers import Answer, Prompt
from providers.fake_upstream.rules import Fault

Headers = list[tuple[bytes, bytes]]
JsonObject = dict[str, Any]
_Entry = TypeVar("_Entry")


class WireError(Exception):
    """A request the real vendor would refuse with a 4xx; rendered in that vendor's error format."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param


@dataclass(slots=True)
class StreamPlan:
    """A stream as framed events: `content` holds one event per content chunk (what faults count)."""

    head: list[bytes] = field(default_factory=list)
    content: list[bytes] = field(default_factory=list)
    tail: list[bytes] = field(default_factory=list)


class WireFormat:
    """One vendor's request parsing, responses, streams and error bodies."""

    name: ClassVar[str]

    def parse(self, body: JsonObject, path_model: str | None) -> Prompt:
        raise NotImplementedError

    def response(self, answer: Answer, prompt: Prompt) -> tuple[JsonObject, Headers]:
        raise NotImplementedError

    def stream(self, answer: Answer, prompt: Prompt) -> StreamPlan:
        raise NotImplementedError

    def error(self, status: int, message: str, model: str, fault: Fault) -> tuple[JsonObject, Headers]:
        """The error body and headers for `status`; `fault` may override type, code and Retry-After."""
        raise NotImplementedError


def sse_data(payload: Any, newline: bytes = b"\n") -> bytes:
    return b"data: " + orjson.dumps(payload) + newline + newline


def sse_event(payload: JsonObject) -> bytes:
    """A named event (Anthropic style): the event name repeats the payload's "type"."""
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def new_id(prefix: str = "", length: int = 24) -> str:
    """A random hex id (not secret: the `random` module is several times faster than uuid4)."""
    return prefix + f"{random.getrandbits(4 * length):0{length}x}"


def unix_now() -> int:
    return int(time.time())


def retry_after_headers(fault: Fault) -> Headers:
    if fault.retry_after is None:
        return []
    seconds = fault.retry_after
    value = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    return [(b"retry-after", value.encode())]


def require_model(body: JsonObject) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("you must provide a model parameter", param="model")
    return model


def require_list(body: JsonObject, key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise WireError(f"'{key}' must be a non-empty array", param=key)
    if not all(isinstance(item, dict) for item in value):
        raise WireError(f"every item of '{key}' must be an object", param=key)
    return value


def optional_int(container: JsonObject, key: str) -> int | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError(f"'{key}' must be a non-negative integer", param=key)
    return value


def error_defaults(table: dict[int, _Entry], status: int) -> _Entry:
    """A vendor error table's entry for a status, falling back to its 400 or 500 entry."""
    return table.get(status) or table[500 if status >= 500 else 400]
