"""A stream's events go out in as few writes as they are ready in: what is ready together is one HTTP chunk.

Read on a raw socket, since HTTP clients hide the chunked transfer coding: each ASGI body message the gateway
sends is one chunk on the wire (uvicorn), so the chunks show how many writes a stream took.
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "How are HTTP chunks framed?"}],
    "temperature": 0,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def _chunks(url: str, key: str, body: dict[str, Any]) -> tuple[dict[str, str], list[bytes]]:
    """The response's headers and its body's HTTP chunks, as the gateway wrote them."""
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {parts.hostname}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200"), head
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["transfer-encoding"] == "chunked"
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return headers, chunks
        chunks.append(rest[:size])
        rest = rest[size + 2 :]


def _events(chunk: bytes) -> list[str]:
    return [line.removeprefix("data: ") for line in chunk.decode().split("\n") if line.startswith("data: ")]


def test_the_opening_and_the_end_of_a_stream_are_one_write_each(e2e, alice_key):
    headers, chunks = _chunks(e2e.url, alice_key, {**BODY, "cache": False})
    assert headers["x-router-cache"] != "hit"
    opening, end = _events(chunks[0]), _events(chunks[-1])
    assert json.loads(opening[0])["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(opening[1])["choices"][0]["delta"]["content"]  # the first delta rides with the role
    assert len(opening) == 2
    assert json.loads(end[0])["usage"]["total_tokens"] > 0 and end[1:] == ["[DONE]"]
    assert all(len(_events(chunk)) == 1 for chunk in chunks[1:-1])  # each delta as it arrives


def test_a_replayed_stream_is_one_write(e2e, alice_key):
    _chunks(e2e.url, alice_key, BODY)
    headers, chunks = _chunks(e2e.url, alice_key, BODY)
    assert headers["x-router-cache"] == "hit"
    assert len(chunks) == 1
    events = _events(chunks[0])
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1] == "[DONE]" and len(events) >= 4
