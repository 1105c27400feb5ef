"""Tenant isolation, table-driven: every /v1 read endpoint and every dashboard page, as alice, bob and an admin.

Alice owns a request, a comparison, a batch, a budget and a key, each carrying a marker that appears nowhere
else. Bob must get 404 for her ids and never meet one of her markers in a list, an aggregate or a fragment.
The admin is staff: the dashboard shows staff everyone's requests (with a user filter), but the /v1 API
answers every caller, staff or not, for their own data only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.services import api_key_issue
from analytics.tests.factories import AttemptFactory, GatewayRequestFactory
from budgets.models import Budget
from routing.models import BatchItem, BatchJob, Comparison, ComparisonResult, GatewayRequest

# transactional: the async views (compare, batch) read through another thread's connection.
pytestmark = pytest.mark.django_db(transaction=True)

# Amounts whose digits (with a point or a thousands comma) no random id or token can contain.
ALICE_COST = Decimal("4321.875")
ALICE_LIMIT = Decimal("98765.25")
BOB_COST = Decimal("0.5")


@dataclass
class World:
    users: dict[str, User]
    keys: dict[str, str]
    alice_request: GatewayRequest
    alice_comparison: str
    alice_batch: str
    alice_key: ApiKey
    markers: dict[str, list[str]]  # per owner: strings only that owner (or staff, on the dashboard) may see


@pytest.fixture
def world(alice, bob, admin_user, catalog) -> World:
    users = {"alice": alice, "bob": bob, "admin": admin_user}
    keys = {name: api_key_issue(user=user, name=f"{name}-isolation-key")[1] for name, user in users.items()}
    alice_request = GatewayRequestFactory(
        user=alice,
        prompt_text="ALICE-PRIVATE-PROMPT about her merger",
        response_text="ALICE-PRIVATE-ANSWER",
        input_cost_usd=ALICE_COST,
        output_cost_usd=Decimal(0),
    )
    AttemptFactory(request=alice_request)
    bob_request = GatewayRequestFactory(
        user=bob, prompt_text="BOB-PRIVATE-PROMPT", input_cost_usd=BOB_COST, output_cost_usd=Decimal(0)
    )
    admin_request = GatewayRequestFactory(user=admin_user, prompt_text="ADMIN-PRIVATE-PROMPT")
    Budget.objects.create(user=alice, own_limit_usd=ALICE_LIMIT, spent_usd=ALICE_COST)
    Budget.objects.create(user=bob, spent_usd=BOB_COST)
    comparison = Comparison.objects.create(
        id="cmp_alicealicealice",
        user=alice,
        models_requested=["gpt-4o-mini"],
        messages=[{"role": "user", "content": "ALICE-PRIVATE-COMPARE-PROMPT"}],
        status="completed",
        completed_at=timezone.now(),
    )
    compared = GatewayRequestFactory(
        user=alice, comparison=comparison, response_text="ALICE-PRIVATE-COMPARED"
    )
    ComparisonResult.objects.create(
        comparison=comparison, index=0, model="gpt-4o-mini", status="success", request=compared
    )
    batch = BatchJob.objects.create(
        id="batch_alicealicealice",
        user=alice,
        status="completed",
        total_requests=1,
        completed_at=timezone.now(),
    )
    item = GatewayRequestFactory(user=alice, batch=batch, response_text="ALICE-PRIVATE-BATCH-ANSWER")
    BatchItem.objects.create(
        batch=batch, index=0, client_id="ALICE-PRIVATE-ITEM", payload={}, status="success", request=item
    )
    alice_key = ApiKey.objects.get(user=alice, name="alice-isolation-key")
    return World(
        users=users,
        keys=keys,
        alice_request=alice_request,
        alice_comparison=comparison.id,
        alice_batch=batch.id,
        alice_key=alice_key,
        markers={
            "alice": [
                alice_request.id,
                compared.id,
                item.id,
                "ALICE-PRIVATE",
                "4321.8",
                "4,321.8",
                "98765.2",
                "98,765.2",
                comparison.id,
                batch.id,
                "alice-isolation-key",
                alice_key.prefix,
            ],
            "bob": [bob_request.id, "BOB-PRIVATE", "bob-isolation-key"],
            "admin": [admin_request.id, "ADMIN-PRIVATE", "admin-isolation-key"],
        },
    )


def _foreign_markers(world: World, viewer: str) -> list[str]:
    return [marker for owner, markers in world.markers.items() if owner != viewer for marker in markers]


def _assert_sees_nothing_of_others(world: World, viewer: str, body: str, where: str) -> None:
    for marker in _foreign_markers(world, viewer):
        assert marker not in body, f"{viewer} saw {marker!r} on {where}"


def _api(world: World, persona: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys[persona]}")
    return client


# --------------------------------------------------------------------------------------------- /v1

API_LISTS = [
    "/v1/models",
    "/v1/budget",
    "/v1/analytics/usage",
    "/v1/analytics/usage?days=365",
    "/v1/analytics/requests",
    "/v1/analytics/requests?search=ALICE",
    "/v1/analytics/requests?per_page=100&status=success",
    "/v1/analytics/models",
]
API_DETAILS = [
    "/v1/analytics/requests/{request}",
    "/v1/chat/compare/{comparison}",
    "/v1/chat/batch/{batch}",
]


@pytest.mark.parametrize("path", API_LISTS)
def test_v1_lists_and_aggregates_show_each_caller_only_their_own(world, path):
    for persona in ("alice", "bob", "admin"):
        response = _api(world, persona).get(path)
        assert response.status_code == 200, (persona, path, response.content)
        _assert_sees_nothing_of_others(world, persona, response.content.decode(), path)


@pytest.mark.parametrize("template", API_DETAILS)
def test_v1_details_answer_the_owner_and_404_for_everyone_else_staff_included(world, template):
    path = template.format(
        request=world.alice_request.id, comparison=world.alice_comparison, batch=world.alice_batch
    )
    owner = _api(world, "alice").get(path)
    assert owner.status_code == 200, owner.content
    for persona in ("bob", "admin"):
        response = _api(world, persona).get(path)
        assert response.status_code == 404, (persona, path)
        error = response.json()["error"]
        assert error["type"] == "not_found_error"
        # The id the caller sent may be echoed back; nothing else of alice's may.
        asked = path.rsplit("/", 1)[-1]
        _assert_sees_nothing_of_others(world, persona, response.content.decode().replace(asked, ""), path)


def test_v1_aggregates_count_exactly_the_callers_rows(world):
    for persona, spent in (("alice", ALICE_COST), ("bob", BOB_COST)):
        own = GatewayRequest.objects.filter(user=world.users[persona])
        usage = _api(world, persona).get("/v1/analytics/usage").json()
        assert usage["total_requests"] == own.count()
        assert Decimal(str(usage["total_cost_usd"])) == sum(r.total_cost_usd for r in own)
        listed = _api(world, persona).get("/v1/analytics/requests").json()
        assert listed["total"] == own.count()
        assert {r["id"] for r in listed["requests"]} == {r.id for r in own}
        budget = _api(world, persona).get("/v1/budget").json()
        assert budget["user_id"] == world.users[persona].pk
        assert Decimal(str(budget["spending"]["total_spent_usd"])) == spent
    assert _api(world, "admin").get("/v1/analytics/usage").json()["total_requests"] == 1  # staff: own only


def test_v1_without_a_key_shows_nothing(world):
    for path in [*API_LISTS, *API_DETAILS]:
        response = APIClient().get(
            path.format(
                request=world.alice_request.id, comparison=world.alice_comparison, batch=world.alice_batch
            )
        )
        assert response.status_code == 401, path
        _assert_sees_nothing_of_others(world, "anonymous", response.content.decode(), path)


# --------------------------------------------------------------------------------------------- dashboard

PAGES = [
    "/dashboard/",
    "/dashboard/?days=90",
    "/dashboard/requests/",
    "/dashboard/requests/?search=ALICE",
    "/dashboard/models/",
    "/dashboard/compare/",
    "/dashboard/budget/",
    "/dashboard/keys/",
]


def _browser(world: World, persona: str) -> Client:
    client = Client()
    client.force_login(world.users[persona])
    return client


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "fragment"])
@pytest.mark.parametrize("path", PAGES)
def test_dashboard_pages_show_a_user_only_their_own(world, path, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for persona in ("alice", "bob"):
        response = _browser(world, persona).get(path, **headers)
        assert response.status_code == 200, (persona, path)
        _assert_sees_nothing_of_others(world, persona, response.content.decode(), path)


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/requests/"])
def test_staff_see_everyones_requests_and_can_narrow_them_to_one_user(world, path):
    admin = _browser(world, "admin")
    everyone = admin.get(path).content.decode()
    if path == "/dashboard/requests/":
        for owner in ("alice", "bob", "admin"):
            assert world.markers[owner][0] in everyone  # each user's request id
    only_bob = admin.get(path, {"user": "bob"}).content.decode()
    assert world.alice_request.id not in only_bob and "ALICE-PRIVATE" not in only_bob
    assert admin.get(path, {"user": "nobody-by-that-name"}).status_code == 404


@pytest.mark.parametrize("path", ["/dashboard/budget/", "/dashboard/keys/", "/dashboard/compare/"])
def test_staff_pages_about_ones_own_things_stay_the_staff_members_own(world, path):
    body = _browser(world, "admin").get(path).content.decode()
    for marker in (
        "98765.2",
        "98,765.2",
        "alice-isolation-key",
        world.alice_key.prefix,
        world.alice_comparison,
    ):
        assert marker not in body


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("/dashboard/requests/{request}/", {"alice": 200, "bob": 404, "admin": 200}),
        ("/dashboard/compare/{comparison}/", {"alice": 200, "bob": 404, "admin": 404}),
    ],
)
def test_dashboard_detail_pages_are_404_for_other_users(world, template, expected):
    path = template.format(request=world.alice_request.id, comparison=world.alice_comparison)
    for persona, status in expected.items():
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = _browser(world, persona).get(path, **headers)
            assert response.status_code == status, (persona, path, headers)
            if status == 404:
                assert "ALICE-PRIVATE" not in response.content.decode()


def test_nobody_revokes_a_key_that_is_not_theirs(world):
    path = f"/dashboard/keys/{world.alice_key.pk}/revoke/"
    for persona in ("bob", "admin"):
        assert _browser(world, persona).post(path).status_code == 404
    world.alice_key.refresh_from_db()
    assert world.alice_key.revoked_at is None
    assert _api(world, "alice").get("/v1/budget").status_code == 200


def test_signed_out_visitors_are_sent_to_the_login_page(world):
    paths = [
        *PAGES,
        f"/dashboard/requests/{world.alice_request.id}/",
        f"/dashboard/compare/{world.alice_comparison}/",
    ]
    for path in paths:
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


def test_the_admin_is_for_staff_only(world):
    for persona in ("alice", "bob"):
        response = _browser(world, persona).get("/admin/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), persona
        assert _browser(world, persona).get("/admin/routing/gatewayrequest/").status_code == 302
    assert _browser(world, "admin").get("/admin/routing/gatewayrequest/").status_code == 200


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_every_dashboard_form_refuses_a_post_without_the_csrf_token(world, htmx):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["alice"])
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    posts = {
        "/dashboard/budget/": {"limit_usd": "1"},
        "/dashboard/keys/": {"name": "sneaky"},
        "/dashboard/compare/": {"prompt": "hi", "models": ["gpt-4o-mini", "gpt-4o"]},
        f"/dashboard/keys/{world.alice_key.pk}/revoke/": {},
        "/accounts/logout/": {},
    }
    for path, data in posts.items():
        assert client.post(path, data, **headers).status_code == 403, path
    world.alice_key.refresh_from_db()
    assert world.alice_key.revoked_at is None
    assert not ApiKey.objects.filter(name="sneaky").exists()
    assert Budget.objects.get(user=world.users["alice"]).own_limit_usd == ALICE_LIMIT


def test_htmx_requests_carry_the_csrf_token_from_every_page(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["alice"])
    page = client.get("/dashboard/budget/")
    token = page.context["csrf_token"]
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in page.content.decode()
    response = client.post(
        "/dashboard/budget/", {"limit_usd": "5"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=str(token)
    )
    assert response.status_code == 200
    assert Budget.objects.get(user=world.users["alice"]).own_limit_usd == 5
