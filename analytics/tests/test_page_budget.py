"""The budget page: every window of the user and their personal keys (spent, limit, remaining, % used, period,
reset date) read through budgets' rules; forms to set or remove one's own windows; spend by day this period;
the alerts that fired this period."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import api_key_issue, team_create
from analytics.templatetags.dashboard_format import pct, usd
from analytics.tests.factories import GatewayRequestFactory
from budgets.models import Budget, BudgetAlert
from budgets.periods import month_start, next_month_start, period_start

pytestmark = pytest.mark.django_db

URL = "/dashboard/budget/"


def _window(period="monthly", **fields):
    start = period_start(period, timezone.now()) or timezone.now() - timedelta(days=400)
    fields.setdefault("period_start", start)
    scope = "key" if "api_key" in fields else "team" if "team" in fields else "user"
    return Budget.objects.create(scope=scope, period=period, **fields)


def _rows(html: str) -> dict[str, dict[str, str]]:
    """The windows table: data attributes and cells by data-testid, per window id."""
    table = html.split('id="budget-windows"')[1].split("</table>")[0]
    rows = {}
    for chunk in table.split("<tr data-window-id=")[1:]:
        window_id = chunk.split('"')[1]
        attrs = {
            name: chunk.split(f'data-{name}="')[1].split('"')[0]
            for name in ("spent", "limit", "remaining", "used")
        }
        cells = {
            name: chunk.split(f'data-testid="window-{name}">')[1].split("</td>")[0]
            for name in ("spent", "limit", "remaining", "used", "resets")
        }
        rows[window_id] = {
            **attrs,
            **{f"cell_{k}": v for k, v in cells.items()},
            "html": chunk.split("</tr>")[0],
        }
    return rows


def test_full_page_lists_every_window_of_the_user_and_their_personal_keys(client, alice, bob):
    laptop = api_key_issue(user=alice, name="laptop")[0]
    team = team_create(name="core", members=[alice])
    team_key = api_key_issue(user=alice, name="core-key", team=team)[0]
    monthly = _window(user=alice, spent_usd=Decimal("2.5"), own_limit_usd=Decimal(10))
    daily = _window("daily", user=alice, spent_usd=Decimal("0.5"), own_limit_usd=Decimal(2))
    keyed = _window("weekly", api_key=laptop, spent_usd=Decimal("0.1"), own_limit_usd=Decimal(1))
    hidden = [_window(api_key=team_key, own_limit_usd=Decimal(3)), _window(user=bob), _window(team=team)]
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("2.5"))
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "<html" in html and 'id="budget-body"' in html
    rows = _rows(html)
    assert set(rows) == {str(monthly.pk), str(daily.pk), str(keyed.pk)}
    assert not {str(w.pk) for w in hidden} & set(rows)
    m = rows[str(monthly.pk)]
    assert (m["cell_spent"], m["cell_limit"], m["cell_remaining"]) == ("$2.50", "$10.00", "$7.50")
    assert m["cell_used"].startswith("25.0%") and "monthly" in m["html"] and "You" in m["html"]
    resets = next_month_start(timezone.now())
    assert f"{resets.day} {resets:%b %Y}</span>" in m["cell_resets"]
    assert "Key “laptop”" in rows[str(keyed.pk)]["html"] and "weekly" in rows[str(keyed.pk)]["html"]
    assert rows[str(daily.pk)]["cell_used"].startswith("25.0%")
    assert 'data-chart="budget"' in html and 'data-testid="own-limit">$10.00<' in html


def test_without_a_window_it_says_so_and_what_to_do(client, alice):
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "No budget windows yet" in html and 'data-testid="own-limit">none<' in html


def test_htmx_request_gets_only_the_body_fragment(client, alice):
    _window(user=alice, own_limit_usd=Decimal(5))
    client.force_login(alice)
    html = client.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="budget-body">') and "<html" not in html
    assert 'id="budget-windows"' in html


def test_a_limit_alone_sets_the_users_own_monthly_window(client, alice):
    client.force_login(alice)
    response = client.post(URL, {"limit_usd": "25"})
    assert response.status_code == 303
    window = Budget.objects.get(scope="user", user=alice, period="monthly")
    assert window.own_limit_usd == Decimal(25)
    assert "Your monthly limit is now $25.00." in client.get(URL).content.decode()


def test_setting_a_daily_window_with_htmx_returns_the_updated_fragment(client, alice):
    client.force_login(alice)
    html = client.post(
        URL, {"target": "user", "period": "daily", "limit_usd": "12.5"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert html.lstrip().startswith('<div id="budget-body">')
    assert "Your daily limit is now $12.50." in html
    window = Budget.objects.get(scope="user", user=alice, period="daily")
    assert window.own_limit_usd == Decimal("12.5")
    assert _rows(html)[str(window.pk)]["cell_limit"] == "$12.50"


def test_setting_a_window_on_ones_personal_key(client, alice):
    key = api_key_issue(user=alice, name="laptop")[0]
    client.force_login(alice)
    client.post(URL, {"target": f"key:{key.pk}", "period": "daily", "limit_usd": "3"})
    assert Budget.objects.get(scope="key", api_key=key, period="daily").own_limit_usd == Decimal(3)


@pytest.mark.parametrize("whose", ["bob", "team", "revoked"])
def test_a_key_not_ones_own_personal_active_key_is_refused_and_nothing_changes(client, alice, bob, whose):
    from accounts.services import api_key_revoke

    if whose == "bob":
        key = api_key_issue(user=bob, name="bobs")[0]
    elif whose == "team":
        key = api_key_issue(user=alice, name="core", team=team_create(name="core", members=[alice]))[0]
    else:
        key = api_key_revoke(key=api_key_issue(user=alice, name="old")[0])
    client.force_login(alice)
    response = client.post(URL, {"target": f"key:{key.pk}", "period": "daily", "limit_usd": "3"})
    assert response.status_code == 400
    assert not Budget.objects.filter(scope="key", api_key=key).exists()


def test_removing_a_limit(client, alice):
    monthly = _window(user=alice, own_limit_usd=Decimal(5))
    daily = _window("daily", user=alice, own_limit_usd=Decimal(1))
    client.force_login(alice)
    client.post(URL, {"target": "user", "period": "monthly", "remove": "1"})
    monthly.refresh_from_db()
    assert monthly.own_limit_usd is None  # one's own monthly window stays: it counts the spending
    html = client.post(URL, {"target": "user", "period": "daily", "remove": "1"}, HTTP_HX_REQUEST="true")
    assert "Your daily limit is removed." in html.content.decode()
    assert not Budget.objects.filter(pk=daily.pk).exists()


def test_each_window_with_an_own_limit_has_a_remove_button(client, alice):
    key = api_key_issue(user=alice, name="laptop")[0]
    _window("daily", api_key=key, own_limit_usd=Decimal(1))
    _window(user=alice)  # no own limit: nothing to remove
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert html.count("Remove limit</button>") == 1
    assert f'name="target" value="key:{key.pk}"' in html


@pytest.mark.parametrize(
    "data",
    [
        {"limit_usd": "-1"},
        {"limit_usd": "abc"},
        {"limit_usd": ""},  # empty is not "unlimited": remove says that
        {"period": "hourly", "limit_usd": "5"},
        {"target": "team:1", "limit_usd": "5"},
    ],
)
def test_bad_input_is_a_400_that_changes_nothing(client, alice, data):
    before = _window(user=alice, own_limit_usd=Decimal(7))
    client.force_login(alice)
    response = client.post(URL, data)
    assert response.status_code == 400 and "field-error" in response.content.decode()
    assert list(Budget.objects.values_list("pk", "own_limit_usd")) == [(before.pk, Decimal(7))]


def test_a_limit_above_the_admin_limit_shows_the_services_reason(client, alice):
    _window(user=alice, admin_limit_usd=Decimal(10))
    client.force_login(alice)
    response = client.post(URL, {"limit_usd": "50"}, HTTP_HX_REQUEST="true")
    assert "administrator" in response.content.decode()
    assert Budget.objects.get(user=alice).own_limit_usd is None


def test_the_form_needs_the_csrf_token(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(URL, {"limit_usd": "25"}).status_code == 403


def test_spend_by_day_counts_the_users_personal_spending_this_period(client, alice):
    team = team_create(name="core", members=[alice])
    team_key = api_key_issue(user=alice, name="core-key", team=team)[0]
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("0.25"))
    GatewayRequestFactory(user=alice, api_key=team_key, total_cost_usd=Decimal("9"))  # the team's money
    GatewayRequestFactory(user=alice, created_at=month_start(timezone.now()) - timedelta(hours=1))
    client.force_login(alice)
    html = client.get(URL).content.decode()
    chart = html.split('id="budget-chart-data"')[1].split("</script>")[0]
    assert '"0.25"' in chart and '"9"' not in chart
    days = timezone.now().day
    assert chart.count(",") + 1 >= days  # a point per day since the 1st


def test_the_alerts_of_the_current_periods_are_listed(client, alice):
    now = timezone.now()
    monthly = _window(user=alice, spent_usd=Decimal(8), own_limit_usd=Decimal(10))
    daily = _window("daily", user=alice, own_limit_usd=Decimal(1))
    BudgetAlert.objects.create(
        budget=monthly, threshold=80, period_start=monthly.period_start, spent_usd=8, limit_usd=10
    )
    BudgetAlert.objects.create(  # yesterday's: its period is over
        budget=daily,
        threshold=100,
        period_start=daily.period_start - timedelta(days=1),
        spent_usd=1,
        limit_usd=1,
        created_at=now - timedelta(days=1),
    )
    client.force_login(alice)
    html = client.get(URL).content.decode()
    alerts = html.split("<h2>Alerts this period</h2>")[1].split("</section>")[0]
    assert alerts.count('data-testid="budget-alert"') == 1
    assert "Your monthly budget is at 80%: $8.00 of $10.00" in alerts


# --- the page reads budgets' rules: it says what GET /v1/budget says


def _api_windows(api) -> dict[str, dict]:
    return {f"{w['scope']}:{w['scope_id']}:{w['period']}": w for w in api.get("/v1/budget").json()["windows"]}


def _agree(page_row: dict[str, str], api_window: dict) -> None:
    for name, field in (("spent", "spent_usd"), ("limit", "limit_usd"), ("remaining", "remaining_usd")):
        assert Decimal(page_row[name]) == Decimal(str(api_window[field])), name
        assert page_row[f"cell_{name}"] == usd(Decimal(str(api_window[field]))), name
    assert Decimal(page_row["used"]) == Decimal(str(api_window["used_percentage"]))
    assert page_row["cell_used"].startswith(pct(api_window["used_percentage"]))


def test_the_page_and_the_api_agree_on_a_stale_monthly_window_and_after_a_reset(client, alice, alice_api):
    last_month = month_start(month_start(timezone.now()) - timedelta(days=1))
    window = Budget.objects.create(
        scope="user",
        user=alice,
        period="monthly",
        period_start=last_month,
        spent_usd=Decimal("7.123456789"),
        own_limit_usd=Decimal(3),  # last month's spending is history: the window counts from zero
    )
    client.force_login(alice)
    row = _rows(client.get(URL).content.decode())[str(window.pk)]
    assert row["cell_spent"] == "$0.00" and row["cell_remaining"] == "$3.00"
    resets = next_month_start(timezone.now())
    assert f"{resets.day} {resets:%b %Y}</span>" in row["cell_resets"]
    _agree(row, _api_windows(alice_api)[f"user:{alice.pk}:monthly"])

    window.refresh_from_db()  # the API rolled it over; spend a third of the limit, then reset
    Budget.objects.filter(pk=window.pk).update(spent_usd=Decimal(1))
    row = _rows(client.get(URL).content.decode())[str(window.pk)]
    _agree(row, _api_windows(alice_api)[f"user:{alice.pk}:monthly"])
    assert row["used"] == "33.33"  # budgets' rounding (two places), not another one

    alice_api.post("/v1/budget/reset")
    row = _rows(client.get(URL).content.decode())[str(window.pk)]
    assert row["cell_spent"] == "$0.00" and row["cell_remaining"] == "$3.00"
    _agree(row, _api_windows(alice_api)[f"user:{alice.pk}:monthly"])


def test_after_a_reset_an_admin_limit_keeps_counting_on_the_page_as_in_the_api(client, alice, alice_api):
    window = _window(user=alice, spent_usd=Decimal(4), own_limit_usd=Decimal(10), admin_limit_usd=Decimal(5))
    alice_api.post("/v1/budget/reset")
    client.force_login(alice)
    row = _rows(client.get(URL).content.decode())[str(window.pk)]
    assert row["cell_limit"] == "$5.00" and row["cell_spent"] == "$4.00" and row["cell_remaining"] == "$1.00"
    _agree(row, _api_windows(alice_api)[f"user:{alice.pk}:monthly"])
