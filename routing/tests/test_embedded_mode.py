"""End to end in `make run`'s configuration: SQLite, local-memory cache, Celery tasks in-process, no Redis.

The real server (uvicorn config.asgi:application, as bin/run-dev starts it) over a migrated and seeded SQLite
file, every provider pointed at the fake upstream; each door is called with its own SDK, and the SQLite file
itself must then hold one row per call, settled, with spending equal to the sum of their costs.
(The response cache is Redis-only for now, a known gap: nothing here relies on a cache hit.)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from routing.tests.live import LiveGateway
from routing.tests.sqlite_support import EmbeddedSite

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
SCALE = Decimal("1e-10")  # the money columns' decimal places, as Django reads them back


@pytest.fixture(scope="module")
def site(tmp_path_factory, fake_upstream) -> EmbeddedSite:
    """`make run`'s demo mode: the providers' base URLs on the fake upstream, the catalog seeded."""
    base = fake_upstream.base_urls
    env = {
        "ROUTER_DEMO": "true",
        "OPENAI_BASE_URL": base["openai"],
        "ANTHROPIC_BASE_URL": base["anthropic"],
        "GEMINI_BASE_URL": base["google"],
        "DEEPSEEK_BASE_URL": base["deepseek"],
    }
    site = EmbeddedSite(tmp_path_factory.mktemp("make-run"), env=env).migrate()
    site.manage("seed_catalog")
    return site


@pytest.fixture(scope="module")
def demo_key(site) -> str:
    return site.manage("create_api_key", "demo").strip().splitlines()[-1]


@pytest.fixture(scope="module")
def gateway(site, fake_upstream) -> Iterator[LiveGateway]:
    log = site.directory / "gateway.log"
    server = LiveGateway(database_url="", upstream=fake_upstream, env=site.env, output=log)
    try:
        server.start()
    except RuntimeError as failed:
        server.stop()
        raise RuntimeError(f"{failed}:\n{log.read_text(errors='replace')}") from failed
    yield server
    server.stop()


def _read(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return db.execute(sql, params).fetchall()


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(SCALE)


def _still_pending(database: Path, timeout_s: float = 10) -> list[str]:
    """The rows not completed in time (a stream's row is written after its last chunk, in a task of its own)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [
            r[0] for r in _read(database, "SELECT id FROM routing_gatewayrequest WHERE status = 'pending'")
        ]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.1)


def _why(site: EmbeddedSite) -> str:
    journal = sorted(p.name for p in site.journal.glob("*")) if site.journal.exists() else []
    log = (site.directory / "gateway.log").read_text(errors="replace")[-2000:]
    return f"journal files: {journal}\ngateway log (tail):\n{log}"


def test_the_site_is_configured_like_make_run(site):
    shown = site.run(
        "-c",
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], "
        "s.CACHES['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL, s.REDIS_URL]))",
    )
    assert json.loads(shown.strip().splitlines()[-1]) == [
        "django.db.backends.sqlite3",
        str(site.database),
        "django.core.cache.backends.locmem.LocMemCache",
        True,
        None,
        None,
    ]


def test_every_door_answers_and_each_call_is_one_settled_row_in_sqlite(
    site, gateway, demo_key, fake_upstream
):
    fake_upstream.clear()
    chat_sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key=demo_key, max_retries=0, timeout=30)
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=demo_key, max_retries=0, timeout=30)
    api = httpx.Client(
        base_url=gateway.url + "/v1", headers={"Authorization": f"Bearer {demo_key}"}, timeout=30
    )
    expected: dict[str, tuple[str, str, int]] = {}  # request id → (door, status, http status)

    chat = chat_sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert chat.choices[0].message.content.startswith("This is a fake answer from gpt-4o-mini")
    expected[chat.id] = ("chat", "success", 200)

    raw = claude.messages.with_raw_response.create(model="claude-sonnet-4.5", max_tokens=200, messages=HELLO)
    message = raw.parse()
    assert message.type == "message" and "fake answer" in message.content[0].text
    expected[raw.headers["X-Request-Id"]] = ("messages", "success", 200)

    response = chat_sdk.responses.create(model="gpt-4o-mini", input="What is the capital of France?")
    assert response.status == "completed" and "fake answer" in response.output_text
    expected[response.model_extra["router"]["request_id"]] = ("responses", "success", 200)

    stream = chat_sdk.chat.completions.create(
        model="gemini-2.5-flash", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "fake answer" in text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    expected[chunks[0].id] = ("chat", "success", 200)

    limit = api.put("/budget/limit", json={"limit_usd": 0})
    assert limit.status_code == 200, limit.text
    with pytest.raises(openai.APIStatusError) as refused:  # a new question: the first one is cached now
        chat_sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "And Spain?"}]
        )
    assert refused.value.status_code == 402
    expected[refused.value.response.headers["X-Request-Id"]] = ("chat", "error", 402)
    assert not (pending := _still_pending(site.database)), f"rows left pending: {pending}\n{_why(site)}"

    usage = json.loads(api.get("/analytics/usage").text, parse_float=Decimal)
    budget = json.loads(api.get("/budget").text, parse_float=Decimal)
    api.close()

    database = site.database
    rows = _read(
        database,
        "SELECT r.id, r.door, r.status, r.http_status, CAST(r.total_cost_usd AS TEXT), r.cached "
        "FROM routing_gatewayrequest r JOIN accounts_user u ON u.id = r.user_id WHERE u.username = 'demo'",
    )
    assert {row[0]: row[1:4] for row in rows} == expected  # one row per call, its door and status
    costs = {row[0]: _money(row[4]) for row in rows}
    cached = {row[0] for row in rows if row[5]}  # a question asked again is answered from the cache, free
    for request_id, (_, status, _) in expected.items():
        paid = status == "success" and request_id not in cached
        assert (costs[request_id] > 0) == paid, (request_id, costs[request_id])
    total = sum(costs.values(), Decimal(0))

    ((spent, reserved),) = _read(
        database,
        "SELECT CAST(b.spent_usd AS TEXT), CAST(b.reserved_usd AS TEXT) "
        "FROM budgets_budget b JOIN accounts_user u ON u.id = b.user_id WHERE u.username = 'demo'",
    )
    assert _money(spent) == total and _money(reserved) == 0
    holds = _read(
        database,
        "SELECT r.request_id, r.status, CAST(r.settled_usd AS TEXT) "
        "FROM budgets_reservation r JOIN accounts_user u ON u.id = r.user_id WHERE u.username = 'demo'",
    )
    settled = {rid: _money(cost) for rid, status, cost in holds if status == "settled"}
    assert settled == {rid: cost for rid, cost in costs.items() if cost > 0}  # each answer settled once
    assert {status for _, status, _ in holds} <= {"settled", "released"}

    assert usage["total_requests"] == len(expected)
    assert Decimal(usage["total_cost_usd"]).quantize(SCALE) == total
    assert {d["door"]: d["requests"] for d in usage["by_door"]} == {"chat": 3, "messages": 1, "responses": 1}
    assert Decimal(budget["spending"]["total_spent_usd"]).quantize(SCALE) == total


def test_concurrent_calls_each_get_their_row_and_charge_on_sqlite(site, gateway):
    key = site.manage("create_api_key", "burst").strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}

    def call(index: int) -> httpx.Response:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Question {index}?"}]}
        return httpx.post(gateway.url + "/v1/chat/completions", headers=headers, json=body, timeout=60)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(16)))
    assert [a.status_code for a in answers] == [200] * 16, [a.text for a in answers if a.status_code != 200]
    # Under make run, a row left pending keeps its hold open (no beat to close it) and its outcome journaled.
    assert not (pending := _still_pending(site.database)), f"rows left pending: {pending}\n{_why(site)}"
    rows = _read(
        site.database,
        "SELECT r.status, CAST(r.total_cost_usd AS TEXT) "
        "FROM routing_gatewayrequest r JOIN accounts_user u ON u.id = r.user_id WHERE u.username = 'burst'",
    )
    assert len(rows) == 16 and {status for status, _ in rows} == {"success"}
    ((spent, reserved),) = _read(
        site.database,
        "SELECT CAST(b.spent_usd AS TEXT), CAST(b.reserved_usd AS TEXT) "
        "FROM budgets_budget b JOIN accounts_user u ON u.id = b.user_id WHERE u.username = 'burst'",
    )
    assert _money(spent) == sum((_money(cost) for _, cost in rows), Decimal(0)) and _money(reserved) == 0


def test_the_response_cache_works_under_make_run_in_local_memory(site, gateway, fake_upstream):
    """Without Redis the cache lives in the process's memory: the same request twice is a miss, then a hit
    at no cost (it always answered `bypass` before, and the dashboard showed a 0.0% hit rate)."""
    key = site.manage("create_api_key", "cached").strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Same question twice?"}]}
    first = httpx.post(gateway.url + "/v1/chat/completions", headers=headers, json=body, timeout=60)
    second = httpx.post(gateway.url + "/v1/chat/completions", headers=headers, json=body, timeout=60)
    assert (first.headers["X-Router-Cache"], second.headers["X-Router-Cache"]) == ("miss", "hit")
    assert second.json()["content"] == first.json()["content"]
    assert second.json()["usage"]["total_cost_usd"] == 0


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4.5"])
def test_an_agents_sdk_loop_with_a_tool_completes_against_the_demo(site, gateway, model):
    """#18's check: in demo mode an Agents SDK loop calls a tool whose schema requires `city`, and ends on
    a final answer built from the tool's result."""
    from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    key = site.manage("create_api_key", f"agent-{model}").strip().splitlines()[-1]
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"Sunny and 21 C in {city}"

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=30)
    set_default_openai_client(client, use_for_tracing=False)
    agent = Agent(name="Weather", instructions="Answer weather questions.", tools=[get_weather], model=model)
    result = Runner.run_sync(agent, "What's the weather like in Lisbon today?", max_turns=4)
    assert calls == ["Lisbon"]
    assert "Sunny and 21 C in Lisbon" in result.final_output


def test_embeddings_work_under_make_run_logged_charged_and_cached(site, gateway):
    """#16's check on the embedded default: the openai SDK's embeddings.create (base64 by default) and a
    float request, one row each with its cost, and the same inputs again a free hit, seen by analytics."""
    key = site.manage("create_api_key", "embedder").strip().splitlines()[-1]
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=30)
    first = client.embeddings.create(model="text-embedding-3-small", input=["make run", "embeds too"])
    assert [len(item.embedding) for item in first.data] == [1536, 1536] and first.usage.prompt_tokens > 0
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["make run", "embeds too"], encoding_format="float"
    )
    again = raw.parse()
    assert raw.headers["X-Router-Cache"] == "hit"
    assert [item.embedding for item in again.data] == [item.embedding for item in first.data]
    api = httpx.Client(base_url=gateway.url + "/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    listed = api.get("/analytics/requests", params={"door": "embeddings"}).json()["requests"]
    api.close()
    assert len(listed) == 2
    costs = sorted(Decimal(str(r["total_cost_usd"])) for r in listed)
    assert costs[0] == 0 and costs[1] > 0  # the hit is free, the call is charged
