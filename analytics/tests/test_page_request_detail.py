"""The request detail page: cost, tokens, performance and routing cards, attempts, prompt and response."""

from decimal import Decimal

import pytest

from analytics.tests.factories import AttemptFactory, GatewayRequestFactory

pytestmark = pytest.mark.django_db


def url(row) -> str:
    return f"/dashboard/requests/{row.id}/"


def test_full_page_shows_every_card_attempts_prompt_and_response(client, alice):
    row = GatewayRequestFactory(
        user=alice, input_tokens=1000, output_tokens=500, latency_ms=2000,
        input_cost_usd=Decimal("0.00015"), output_cost_usd=Decimal("0.0003"), total_cost_usd=Decimal("0.00045"),
        selection_mode="cost-optimized", models_considered=3,
    )  # fmt: skip
    AttemptFactory(request=row, index=0, status="error", status_code=503, error="Provider returned 503")
    AttemptFactory(request=row, index=1)
    client.force_login(alice)
    response = client.get(url(row))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert "$0.00015" in html and "$0.0003<" in html and "$0.00045<" in html
    assert "250 tokens/s" in html
    assert "$0.0003" in html  # per 1K tokens: 0.00045 / 1.5
    assert "cost-optimized" in html and "Provider returned 503" in html
    assert "What is the capital of France?" in html and "The capital of France is Paris." in html


def test_it_names_the_price_row_the_request_was_charged_at(client, alice, catalog):
    from providers.models import ModelPrice

    price = ModelPrice.objects.get(model__model_id="gpt-4o-mini")
    row = GatewayRequestFactory(user=alice, price=price)
    client.force_login(alice)
    assert "Charged at $0.15 in / $0.60 out per 1M tokens" in client.get(url(row)).content.decode()


def test_htmx_request_gets_only_the_body_fragment(client, alice):
    row = GatewayRequestFactory(user=alice)
    client.force_login(alice)
    html = client.get(url(row), HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="request-body">')
    assert "<html" not in html


def test_another_users_request_is_a_404(client, alice, bob):
    row = GatewayRequestFactory(user=bob)
    client.force_login(alice)
    assert client.get(url(row)).status_code == 404


def test_staff_can_open_anyones_request(client, admin_user, alice):
    row = GatewayRequestFactory(user=alice)
    client.force_login(admin_user)
    assert client.get(url(row)).status_code == 200


def test_a_cleared_prompt_says_it_was_removed_by_retention(client, alice, settings):
    settings.ROUTER_LOG_RETENTION_DAYS = 30
    row = GatewayRequestFactory(user=alice, prompt_text="", response_text="", messages=[])
    client.force_login(alice)
    assert "removed after 30 days" in client.get(url(row)).content.decode()


def test_content_parts_render_text_and_name_images(client, alice):
    parts = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "x"}},
    ]
    row = GatewayRequestFactory(user=alice, messages=[{"role": "user", "content": parts}])
    client.force_login(alice)
    html = client.get(url(row)).content.decode()
    assert "What is in this picture?" in html and "[image_url]" in html


def test_it_shows_the_door_the_request_came_through(client, alice):
    row = GatewayRequestFactory(user=alice, door="responses")
    client.force_login(alice)
    html = client.get(url(row)).content.decode()
    assert '<dt>Door</dt><dd class="mono" data-testid="door">responses</dd>' in html
    partial = client.get(url(row), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'data-testid="door">responses<' in partial


def test_a_row_with_impossible_provider_usage_shows_the_anomaly_badge_and_each_count(client, alice):
    row = GatewayRequestFactory(
        user=alice, usage_anomalies=["completion_tokens=1000000000000000: above the possible 50"]
    )
    client.force_login(alice)
    html = client.get(url(row)).content.decode()
    assert "usage anomaly" in html and "completion_tokens=1000000000000000" in html
    assert "usage anomaly" not in client.get(url(GatewayRequestFactory(user=alice))).content.decode()


def test_an_unsettled_row_says_why_it_was_charged_at_the_hold(client, alice):
    row = GatewayRequestFactory(
        user=alice, status="unsettled", error_code="unsettled", error_message="charged at the hold"
    )
    client.force_login(alice)
    html = client.get(url(row)).content.decode()
    assert "Unsettled" in html and "charged at the hold" in html


def test_the_cost_card_breaks_the_charge_down_by_cached_input_cache_writes_and_output(client, alice, catalog):
    from providers.models import ModelPrice

    price = ModelPrice.objects.filter(model__model_id="claude-sonnet-4-5-20250929").latest("effective_from")
    row = GatewayRequestFactory(
        user=alice, price=price, input_tokens=1000, cached_tokens=200, cache_write_tokens=300,
        cache_write_1h_tokens=100, output_tokens=50, reasoning_tokens=10,
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(url(row)).content.decode()
    # Sonnet 4.5: $3 input, $0.30 cached, $3.75 5-minute writes, $6 1-hour writes, $15 output per 1M tokens.
    assert "Plain input" in html and "$0.0015<" in html  # 500 plain x $3
    assert "$0.00006<" in html  # 200 cached x $0.30
    assert "$0.00075<" in html and "$0.0006<" in html  # 200 x $3.75 and 100 x $6
    assert "$0.00075<" in html and "10 reasoning" in html  # 50 output x $15


def test_the_routing_card_names_the_key_and_its_team(client, alice, bob):
    from accounts.services import api_key_issue, team_create

    team = team_create(name="core", members=[alice, bob])
    key = api_key_issue(user=bob, name="bob-core", team=team)[0]
    row = GatewayRequestFactory(user=bob, api_key=key)
    client.force_login(alice)  # a teammate
    html = client.get(url(row)).content.decode()
    assert "bob-core" in html and key.prefix in html
    assert f'href="/dashboard/teams/{team.pk}/">core</a> · by bob' in html


TOOL_CALLS = [
    {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
]


def test_a_tool_call_answer_shows_its_calls_not_an_empty_response(client, alice):
    row = GatewayRequestFactory(
        user=alice, response_text="", finish_reason="tool_calls", tool_calls=TOOL_CALLS
    )
    client.force_login(alice)
    html = client.get(url(row)).content.decode()
    calls = html.split('id="tool-calls"')[1].split("</section>")[0]
    assert "get_weather" in calls and "call_1" in calls
    assert "&quot;city&quot;: &quot;Paris&quot;" in calls  # the arguments, indented JSON
    assert "The response was empty" not in html


def test_the_detail_api_returns_the_tool_calls(alice_api, alice):
    row = GatewayRequestFactory(
        user=alice, response_text="", finish_reason="tool_calls", tool_calls=TOOL_CALLS
    )
    body = alice_api.get(f"/v1/analytics/requests/{row.id}").json()
    assert body["tool_calls"] == TOOL_CALLS and body["response_text"] == ""
    plain = GatewayRequestFactory(user=alice)
    assert alice_api.get(f"/v1/analytics/requests/{plain.id}").json()["tool_calls"] is None
