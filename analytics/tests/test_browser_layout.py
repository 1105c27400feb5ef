"""The dashboard's layout at desktop (1280 px) and phone (390 px) width, in headless Chromium: no table cut off, no
figure spilling out of its card, the sidebar's dark column to the page's bottom, axis titles never over their
ticks, and a saved limit shown as typed. `bench/screenshots.py` regenerates the pictures of the same pages."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.tests.browser import BROWSER_MARKS, fits, log_in
from analytics.tests.factories import GatewayRequestFactory

pytestmark = BROWSER_MARKS

MODELS = [
    ("claude-opus-4-1-20250805", "anthropic", "0.0460998387"),
    ("claude-sonnet-4-5-20250929", "anthropic", "0.0097829478"),
    ("gemini-2.5-flash-lite", "google", "0.000287831"),
    ("text-embedding-3-large", "openai", "0.0001406847"),
    ("deepseek-reasoner", "deepseek", "0.0014289046"),
]


@pytest.fixture
def traffic(alice):
    """A month of requests over long model names, with costs of ten decimals (averages of many digits)."""
    from accounts.services import api_key_issue, team_create

    team = team_create(name="platform-infrastructure", members=[alice])
    key = api_key_issue(user=alice, name="ci-pipeline-nightly", team=team)[0]
    now = timezone.now()
    for day in range(30):
        for index, (model, provider, cost) in enumerate(MODELS):
            GatewayRequestFactory(
                user=alice,
                api_key=key if index % 2 else None,
                created_at=now - timedelta(days=day, minutes=index),
                model=model,
                provider=provider,
                total_cost_usd=Decimal(cost) * (1 + day % 7),
                cache_savings_usd=Decimal("0.00012345") if index == 0 else Decimal(0),
            )


@pytest.fixture(params=["desktop", "phone"])
def tab(request, live_server):
    """A logged-out tab at each width. The live server is named here (not only behind `page`), so pytest-django
    gives the test its transactional database before the traffic is written."""
    tab = request.getfixturevalue("page" if request.param == "desktop" else "phone_page")
    request.getfixturevalue("traffic")
    return tab


def _overview(tab) -> None:
    log_in(tab, "alice")
    tab.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-daily'))")


def test_every_overview_table_shows_all_its_columns(tab):
    _overview(tab)
    tables = tab.evaluate("() => [...document.querySelectorAll('main .table-wrap table')].length")
    assert tables >= 5  # per model, by door, by key, by team, daily
    for index in range(tables):
        header = tab.locator("main .table-wrap table").nth(index).locator("thead").inner_text()
        cut = tab.evaluate(
            "(i) => { const box = document.querySelectorAll('main .table-wrap')[i];"
            " return box.scrollWidth - box.clientWidth; }",
            index,
        )
        assert cut <= 1, f"table {index + 1} ({header!r}) is cut off by {cut}px"
    assert "% OF COST" in tab.locator("#usage-by-key thead").inner_text().upper()


def test_every_figure_stays_inside_its_card(tab):
    _overview(tab)
    spilled = tab.evaluate(
        """() => [...document.querySelectorAll('.stat .value, .stat .sub')]
            .filter(el => el.scrollWidth > el.clientWidth + 1 ||
                          el.getBoundingClientRect().right > el.closest('.card').getBoundingClientRect().right)
            .map(el => el.textContent.trim())"""
    )
    assert spilled == []
    wrapped = tab.evaluate(
        """() => [...document.querySelectorAll('.stat .value')]
            .filter(el => { const range = document.createRange(); range.selectNodeContents(el);
                            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1; })
            .map(el => el.textContent.trim())"""
    )
    assert wrapped == []  # one line each: "1,638 ms" was broken over two
    avg = tab.inner_text(".stat:has-text('Avg cost') .value")
    digits = avg.replace("$", "").replace("0.", "").lstrip("0")
    assert len(digits) <= 4, avg  # four significant digits at most


def test_the_sidebar_is_dark_to_the_bottom_of_a_long_page(page, traffic):
    _overview(page)
    height = page.evaluate("() => document.documentElement.scrollHeight")
    assert height > 900 * 1.3  # the page is longer than the window
    shot = base64.b64encode(page.screenshot(full_page=True)).decode()
    bottom_left = page.evaluate(
        """async (data) => {
            const image = new Image();
            image.src = 'data:image/png;base64,' + data;
            await image.decode();
            const canvas = document.createElement('canvas');
            canvas.width = image.width; canvas.height = image.height;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(image, 0, 0);
            return [...ctx.getImageData(20, image.height - 20, 1, 1).data];
        }""",
        shot,
    )
    red, green, blue = bottom_left[:3]
    assert max(red, green, blue) < 60, (
        f"the page's bottom-left corner is {bottom_left}, not the sidebar's slate"
    )


def test_axis_titles_never_sit_on_their_ticks(tab):
    _overview(tab)
    scales = tab.evaluate(
        """() => {
            const chart = Chart.getChart(document.getElementById('chart-daily'));
            return ['y', 'y1'].map(id => {
                const scale = chart.scales[id];
                chart.ctx.font = Chart.helpers.toFont(scale.options.ticks.font).string;
                const widest = Math.max(...scale.ticks.map(t => chart.ctx.measureText(String(t.label)).width));
                const title = scale.options.title;
                const titleRoom = title.display
                    ? Chart.helpers.toFont(title.font).lineHeight + Chart.helpers.toPadding(title.padding).height
                    : 0;
                return {id, width: scale.width, needed: widest + scale.options.ticks.padding + titleRoom,
                        title: title.display, canvas: chart.width};
            });
        }"""
    )
    for scale in scales:
        assert scale["width"] + 0.5 >= scale["needed"], scale
        assert scale["title"] == (scale["canvas"] >= 480), scale  # titled where there is room


def test_a_saved_limit_reads_as_typed_at_both_widths(tab):
    log_in(tab, "alice")
    tab.goto("/dashboard/budget/")
    tab.fill("#id_limit_usd", "25")
    tab.click("text=Save limit")
    tab.wait_for_selector("text=Your monthly limit is now $25.00.")
    tab.goto("/dashboard/budget/")
    assert tab.input_value("#id_limit_usd") == "25"
    assert fits(tab, "#budget-windows")
