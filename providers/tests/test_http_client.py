"""The shared httpx client: one pooled client per event loop, closed on request."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from providers import http


async def test_it_returns_the_same_client_within_a_loop() -> None:
    assert http.get_client() is http.get_client()


async def test_it_pools_connections_without_http2() -> None:
    client = http.get_client()

    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 1000
    assert pool._max_keepalive_connections == 200
    assert pool._http2 is False


def test_each_event_loop_gets_its_own_client() -> None:
    async def client_of_this_loop() -> httpx.AsyncClient:
        return http.get_client()

    first = asyncio.run(client_of_this_loop())
    second = asyncio.run(client_of_this_loop())

    assert first is not second


def test_it_refuses_to_hand_out_a_client_outside_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        http.get_client()


async def test_closing_replaces_the_client_on_next_use() -> None:
    client = http.get_client()

    await http.aclose_clients()

    assert client.is_closed
    assert http.get_client() is not client


async def test_a_client_closed_elsewhere_is_replaced() -> None:
    client = http.get_client()
    await client.aclose()

    assert http.get_client() is not client


def test_request_timeout_caps_connect_at_ten_seconds() -> None:
    timeout = http.request_timeout(45)

    assert (timeout.read, timeout.write, timeout.pool, timeout.connect) == (45, 45, 45, 10)
    assert http.request_timeout(3).connect == 3
