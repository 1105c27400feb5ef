"""The dashboard in headless Chromium (Playwright, Debian's /usr/bin/chromium) against a live server.

Skipped, with the reason, where Chromium or Playwright is missing (make test installs both).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.tests.browser import BROWSER_MARKS, fits, log_in
from analytics.tests.factories import AttemptFactory, GatewayRequestFactory

pytestmark = BROWSER_MARKS


def _traffic(user) -> list:
    now = timezone.now()
    rows = []
    for day in range(12):
        for index, (model, provider) in enumerate(
            [
                ("gpt-4o-mini", "openai"),
                ("claude-sonnet-4-5-20250929", "anthropic"),
                ("deepseek-chat", "deepseek"),
            ]
        ):
            rows.append(
                GatewayRequestFactory(
                    user=user,
                    created_at=now - timedelta(days=day, minutes=index),
                    model=model,
                    provider=provider,
                    prompt_text=f"Question {day}-{index} about {'haiku' if index == 1 else 'tcp'}",
                    total_cost_usd=Decimal("0.0001") * (index + 1) * (day + 1),
                    status="error" if (day, index) == (3, 2) else "success",
                    latency_ms=300 + 40 * index + day,
                )
            )
    return rows


def test_log_in_and_see_the_overview_charts_drawn_with_data(page, alice):
    _traffic(alice)
    log_in(page, "alice")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-daily'))")
    drawn = page.evaluate(
        """() => ['chart-daily', 'chart-providers'].map(id => {
            const canvas = document.getElementById(id);
            const chart = Chart.getChart(canvas);
            return {width: canvas.width, height: canvas.height,
                    points: chart.data.datasets[0].data.reduce((a, b) => a + Number(b), 0)};
        })"""
    )
    for chart in drawn:
        assert chart["width"] > 0 and chart["height"] > 0
        assert chart["points"] > 0
    assert page.inner_text("[data-testid=stat-requests]") == "36"

    page.click("text=7 days")  # an HTMX swap of the body; the charts are drawn again
    page.wait_for_function(
        "() => document.querySelector('#overview-body .sub').textContent.includes('last 7 days')"
    )
    page.wait_for_function("() => Chart.getChart(document.getElementById('chart-daily'))")
    assert page.inner_text("[data-testid=stat-requests]") == "21"
    assert "days=7" in page.url


def test_filter_the_request_log_and_open_a_detail_page(page, alice, catalog):
    rows = _traffic(alice)
    AttemptFactory(request=rows[1], index=0, status="error", status_code=429, error="Rate limited upstream")
    log_in(page, "alice")
    page.click("nav >> text=Requests")
    page.wait_for_url(re.compile(r".*/dashboard/requests/$"))
    assert "1\u201320 of 36 requests" in page.inner_text("[data-testid=result-count]")

    page.locator("#id_search").press_sequentially("haiku", delay=30)  # debounced HTMX search; the URL follows
    page.wait_for_function(
        "() => document.querySelector('[data-testid=result-count]').textContent.includes('of 12')"
    )
    assert "search=haiku" in page.url
    page.select_option("#id_provider", "anthropic")
    page.wait_for_url(re.compile(r".*provider=anthropic.*"))
    assert "12 requests" in page.inner_text("[data-testid=result-count]")

    page.click(f"a[href='/dashboard/requests/{rows[1].id}/'] >> nth=0")
    page.wait_for_url(re.compile(rf".*/dashboard/requests/{rows[1].id}/$"))
    body = page.inner_text("main")
    assert "claude-sonnet-4-5-20250929" in body
    assert "Rate limited upstream" in body
    assert "Question 0-1 about haiku" in body


def test_create_and_revoke_a_key(page, alice):
    log_in(page, "alice")
    page.click("nav >> text=API keys")
    page.fill("#id_name", "browser-key")
    page.click("text=Create key")
    key = page.input_value("#new-key-value")
    assert key.startswith("amr_") and len(key) == 44
    row = page.locator("tr", has_text="browser-key")
    assert "active" in row.inner_text()

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("text=Revoke").click()
    page.wait_for_function("() => !document.getElementById('new-key-value')")
    assert "revoked" in page.locator("tr", has_text="browser-key").inner_text()

    from accounts.models import ApiKey

    assert ApiKey.objects.get(user=alice, name="browser-key").status == "revoked"


def test_set_a_budget(page, alice):
    log_in(page, "alice")
    page.click("nav >> text=Budget")
    page.fill("#id_limit_usd", "25")
    page.click("text=Save limit")
    page.wait_for_selector("text=Your monthly limit is now $25.")
    assert page.inner_text("[data-testid=own-limit]") == "$25.00"
    assert page.input_value("#id_limit_usd") == "25"  # as typed; it read 25.0000000000 after saving
    page.wait_for_function("() => Chart.getChart(document.getElementById('chart-budget'))")
    assert fits(page, "#budget-windows")

    from budgets.models import Budget

    assert Budget.objects.get(user=alice).own_limit_usd == Decimal(25)


@pytest.fixture
def compare_backend(fake_upstream, settings, catalog):
    """A real Celery worker and every provider pointed at the fake upstream, for a comparison end to end."""
    from providers.catalog import catalog_invalidate

    # Imported, never skipped: a rename fails this test instead of silencing it.
    from routing.tests.conftest import LiveWorker
    from routing.tests.live import live_database_url

    settings.PROVIDER_BASE_URLS = fake_upstream.base_urls
    catalog_invalidate()
    fake_upstream.clear()
    with LiveWorker(database_url=live_database_url(), upstream=fake_upstream, concurrency=2) as worker:
        yield worker
    catalog_invalidate()


def test_run_a_comparison_to_completion(page, alice, compare_backend):
    log_in(page, "alice")
    page.click("nav >> text=Compare")
    page.check("input[value='gpt-4o-mini']")
    page.check("input[value='deepseek-chat']")
    page.fill("#id_prompt", "Say hello in French")
    page.click("text=Run comparison")
    try:
        page.wait_for_selector("#compare-results[data-status=done]", timeout=60_000)
    except Exception as error:
        raise AssertionError(f"no finished comparison; the page shows:\n{page.inner_text('main')}") from error
    results = page.locator("#compare-results article")
    assert results.count() == 2
    text = page.inner_text("#compare-results")
    assert "cheapest" in text and "fastest" in text
    assert "/dashboard/compare/cmp_" in page.url


def test_keys_page_shows_a_keys_spend_windows_and_limits_and_sets_a_daily_limit(page, alice):
    from accounts.services import api_key_issue, team_create

    team = team_create(name="core", members=[alice])
    key = api_key_issue(user=alice, name="core-key", team=team, rate_limit_rpm=60)[0]
    GatewayRequestFactory(user=alice, api_key=key, total_cost_usd=Decimal("0.25"))
    log_in(page, "alice")
    page.click("nav >> text=API keys")
    row = page.locator(f"tr[data-key-id='{key.pk}']")
    assert "$0.25" in row.inner_text() and "60 rpm" in row.inner_text()
    row.locator("summary", has_text="Set limit").click()
    row.locator("select[name=period]").select_option("daily")
    row.locator("input[name=limit_usd]").fill("5")
    row.locator("text=Save").first.click()
    page.wait_for_selector("text=its daily limit is now $5.")
    assert "daily: $0.00 of $5.00" in page.locator(f"tr[data-key-id='{key.pk}']").inner_text()
    assert fits(page, "#keys-table")


def test_staff_set_a_team_window_and_a_member_sees_and_dismisses_its_alert(page, admin_user, alice):
    from accounts.services import api_key_issue, team_create
    from budgets.models import Budget, BudgetAlert

    team = team_create(name="core", members=[alice])
    key = api_key_issue(user=alice, name="core-key", team=team)[0]
    GatewayRequestFactory(user=alice, api_key=key, total_cost_usd=Decimal("0.4"))
    log_in(page, "admin")
    page.click("nav >> text=Teams")
    page.click("#teams-table >> text=core")
    page.wait_for_function("() => Chart.getChart(document.getElementById('chart-team'))")
    form = page.locator("#team-window-form")
    form.locator("select[name=period]").select_option("daily")
    form.locator("input[name=own_limit_usd]").fill("0.5")
    form.locator("text=Save window").click()
    page.wait_for_selector("text=core's daily window is set.")
    assert "$0.50" in page.inner_text("#team-windows")  # a new window counts from now
    window = Budget.objects.get(team=team, period="daily")
    assert window.own_limit_usd == Decimal("0.5")

    BudgetAlert.objects.create(
        budget=window, threshold=80, period_start=window.period_start, spent_usd=Decimal("0.4"), limit_usd=1
    )
    page.context.clear_cookies()
    log_in(page, "alice")
    banner = page.locator(".banner", has_text="Team core's daily budget is at 80%")
    banner.locator("text=Dismiss").click()
    page.wait_for_function("() => !document.querySelector('.banner')")
    page.reload()
    assert page.locator(".banner").count() == 0
    page.goto(f"/dashboard/teams/{team.pk}/")
    for table in ("#team-by-model table", "#team-members table", "#team-keys table"):
        assert fits(page, table), table
