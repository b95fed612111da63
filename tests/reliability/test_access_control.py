"""Access control over every endpoint (DESIGN.md section 10; issue 9, part 4).

The endpoints are read from the URL resolver, so a new endpoint is checked as soon as it
is routed: a customer endpoint (one that names an order, a withdrawal, a claim, or lives
under /api/me/) must answer 404 with none of the victim's data to another customer's
access token, signed link or session, and 401 or 404 to an anonymous caller; a staff
endpoint must refuse anyone without its `required_permission`. A route this module does
not know fails the test until it is classified here.

Admin actions are read from the admin site: each one is offered only to users with the
permissions it declares (approving a refund is its own permission, orders.approve_refund).

Throttling: placing orders (`checkout`), guessing order tokens (`token_guess`) and the
webhooks (`webhook`) answer 429 problem+json with `retry_after` past their rate, with the
local-memory cache and with the Redis cache production uses (CACHE_URL=rediscache://...).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.throttling import ScopedRateThrottle

from orders.links import order_link_token
from orders.models import Order, PaymentMethod
from orders.services.payments import record_payment
from shop import tokens
from shop.selectors import today_in_riga
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    ProductFactory,
    TermsVersionFactory,
)

pytestmark = pytest.mark.django_db

VICTIM = {
    "first_name": "Ilze",
    "last_name": "Upeniece",
    "email": "ilze.upeniece@example.lv",
    "phone": "+37129990001",
}
VICTIM_IBAN = "LV80BANK0000435195001"
ATTACKER = {
    "first_name": "Mārtiņš",
    "last_name": "Zaglis",
    "email": "martins.zaglis@example.lv",
    "phone": "+37129990002",
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

# --- What each route is --------------------------------------------------------------------

# Public: no customer's data behind them.
PUBLIC_ROUTES = {
    "",
    "api/terms/",
    "api/orders/",  # placing an order
    "api/schema/",
    "api/docs/",
    "i18n/setlang/",
    "^api/",  # the problem+json 404 for unknown API paths
    "privacy/unsubscribe/",  # one-click unsubscribe: a signed token, no data shown (R31)
    "privacy/consents/confirm/",  # double opt-in: a signed token, shows only the purposes
}
# Public too: the catalogue, and the sign-in flows (register, log in, email a link to
# prove an address) which show no data until the identity is proven.
PUBLIC_PREFIXES = ("api/^products", "api/^parcel-machines", "api/auth/", "api/me/email-link/")
WEBHOOK_PREFIX = "api/webhooks/"
STAFF_PREFIX = "api/staff/"
ADMIN_PREFIX = "admin/"
ACCOUNT_PREFIX = "api/me/"
CUSTOMER_OBJECT = re.compile(r"<(?:\w+:)?(number|pk|claim_id|withdrawal_id|line_id)>")


def walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def view_class(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def methods_of(callback) -> list[str]:
    cls = view_class(callback)
    if cls is None:  # a function view: try both
        return ["get", "post"]
    return [m for m in HTTP_METHODS if hasattr(cls, m)]


def classify(route: str) -> str:
    if route in PUBLIC_ROUTES or route.startswith(PUBLIC_PREFIXES):
        return "public"
    if route.startswith(ADMIN_PREFIX):
        return "admin"
    if route.startswith(WEBHOOK_PREFIX):
        return "webhook"
    if route.startswith(STAFF_PREFIX):
        return "staff"
    if route.startswith(ACCOUNT_PREFIX):
        return "account"  # the caller's own data: no object of anyone's in the path
    if CUSTOMER_OBJECT.search(route):
        return "customer"
    return "unknown"


def routes():
    return [
        (route, callback, classify(route)) for route, callback in walk(get_resolver().url_patterns)
    ]


def customer_routes():
    return [(r, c) for r, c, kind in routes() if kind == "customer"]


def account_routes():
    return [(r, c) for r, c, kind in routes() if kind == "account"]


def staff_routes():
    return [(r, c) for r, c, kind in routes() if kind == "staff"]


# --- The two customers -----------------------------------------------------------------------


@dataclass
class Customer:
    user: User
    number: str
    token: str
    order: Order


@pytest.fixture
def catalogue():
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
    ProductFactory(sku="AC-001", price=Decimal("20.00"), stock=50)
    ProductFactory(sku="AC-002", price=Decimal("15.00"), stock=50)


def place_through_api(person: dict, username: str) -> Customer:
    user = User.objects.create_user(username, email=person["email"])
    client = Client()
    client.force_login(user)
    response = client.post(
        "/api/orders/",
        {
            "customer": {**person, "is_consumer": True},
            "capacity": "adult",
            "delivery": {"method": "omniva_parcel_machine", "parcel_machine_id": "9001"},
            "lines": [{"sku": "AC-001", "quantity": 1}, {"sku": "AC-002", "quantity": 1}],
            "accepted_terms_version": "2026-01",
            "consents": {"marketing_email": False},
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get(number=body["number"])
    return Customer(user=user, number=body["number"], token=body["access_token"], order=order)


def deliver(order: Order) -> None:
    """Paid (by bank transfer from the victim's account), shipped, delivered."""
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now() - timedelta(days=2),
        payer_name="Ilze Upeniece",
        payer_iban=VICTIM_IBAN,
    )
    order = Order.objects.get(pk=order.pk)
    order.ship(at=timezone.now() - timedelta(days=2))
    order.save()
    order.deliver(at=timezone.now() - timedelta(days=1))
    order.save()


@pytest.fixture
def victim(catalogue) -> dict:
    """The victim's delivered order, with a withdrawal and a conformity claim, each made
    through the API the way the customer makes them."""
    customer = place_through_api(VICTIM, "ilze")
    deliver(customer.order)
    client = Client(headers={"X-Order-Token": customer.token})
    withdrawal = client.post(
        f"/api/orders/{customer.number}/withdrawals/",
        {
            "lines": [{"sku": "AC-001", "quantity": 1}],
            "iban": VICTIM_IBAN,
            "account_holder": "Ilze Upeniece",
            "reason": "",
        },
        content_type="application/json",
    )
    assert withdrawal.status_code == 201, withdrawal.content
    claim = client.post(
        f"/api/orders/{customer.number}/claims/",
        {
            "lines": [{"sku": "AC-002", "quantity": 1}],
            "description": "The pump of the bottle is broken.",
            "discovered_on": today_in_riga().isoformat(),
            "remedy": "replacement",
        },
        content_type="application/json",
    )
    assert claim.status_code == 201, claim.content
    return {
        "customer": customer,
        "number": customer.number,
        "line_id": customer.order.lines.order_by("pk").first().pk,
        "withdrawal_id": withdrawal.json()["id"],
        "claim_id": claim.json()["id"],
    }


@pytest.fixture
def attacker(catalogue) -> Customer:
    return place_through_api(ATTACKER, "martins")


def concrete_path(route: str, objects: dict) -> str:
    """The route with the victim's objects in its parameters."""

    def value(match: re.Match) -> str:
        name = match.group(2)
        if name == "number":
            return objects["number"]
        if name == "line_id":
            return str(objects["line_id"])
        if name == "claim_id" or (name in ("pk", "id") and "claims/" in route):
            return str(objects["claim_id"])
        if name == "withdrawal_id" or (name in ("pk", "id") and "withdrawals/" in route):
            return str(objects["withdrawal_id"])
        raise AssertionError(
            f"customer route {route!r} has a parameter {name!r} this test cannot fill: "
            "teach concrete_path() which of the victim's objects it names"
        )

    return "/" + re.sub(r"<((?:\w+:)?)(\w+)>", value, route)


def victim_state(number: str) -> dict:
    order = Order.objects.get(number=number)
    return {
        "status": order.status,
        "contact": order.contact_established_at,
        "refunds": list(order.refunds.order_by("pk").values_list("pk", "status", "amount")),
        "withdrawals": sorted((w.pk, w.status) for w in order.withdrawals.all())
        if hasattr(order, "withdrawals")
        else [],
        "claims": sorted((c.pk, c.status) for c in order.claims.all())
        if hasattr(order, "claims")
        else [],
    }


def leaked(content: bytes) -> list[str]:
    text = content.decode("utf-8", errors="replace")
    secrets_ = [VICTIM["email"], VICTIM["last_name"], VICTIM["phone"], VICTIM_IBAN]
    return [s for s in secrets_ if s in text]


def call(client: Client, method: str, path: str, *, token: str | None = None):
    """One request; for the web pages the token rides in the query string and the form,
    for the API in the X-Order-Token header."""
    cache.clear()  # these tests are about who gets in, not about the token_guess rate
    is_api = path.startswith("/api/")
    headers = {"X-Order-Token": token} if token and is_api else {}
    if token and not is_api:
        path = f"{path}?token={token}"
    if method == "get":
        return client.get(path, headers=headers)
    if is_api:
        return getattr(client, method)(path, {}, content_type="application/json", headers=headers)
    return getattr(client, method)(path, {"token": token or ""}, headers=headers)


# --- Tests -------------------------------------------------------------------------------------


def test_every_route_is_classified():
    """A new route must be public, customer, staff, webhook or admin: nothing unknown."""
    unknown = [route for route, _cb, kind in routes() if kind == "unknown"]
    assert unknown == [], f"classify these routes in {__name__}: {unknown}"
    assert len(customer_routes()) >= 8  # the order, invoice, withdrawal, claim routes...


def test_other_customers_token_link_or_session_get_404_and_no_data(victim, attacker, figure):
    """Section 10: for every customer endpoint and method, another customer's access
    token, signed link or logged-in session, a forged token and an anonymous caller get
    404 (401 allowed for anonymous), none of the victim's data, and nothing changes."""
    before = victim_state(victim["number"])
    signed_link = order_link_token(Order.objects.get(number=attacker.number))
    callers = {
        "anonymous": (Client(), None),
        "other customer's access token": (Client(), attacker.token),
        "other customer's signed link": (Client(), signed_link),
        "forged token": (Client(), tokens.new_secret()),
        "other customer's session": (Client(), None),
    }
    callers["other customer's session"][0].force_login(attacker.user)

    checked, failures = 0, []
    for route, callback in customer_routes():
        path = concrete_path(route, victim)
        for method in methods_of(callback):
            for who, (client, token) in callers.items():
                response = call(client, method, path, token=token)
                allowed = {401, 404, 405} if who == "anonymous" else {404, 405}
                if response.status_code not in allowed or leaked(response.content):
                    failures.append(
                        f"{method.upper()} {path} as {who}: {response.status_code} "
                        f"{response.content[:200]!r} leaked={leaked(response.content)}"
                    )
                checked += 1
    assert failures == [], "\n".join(failures)
    assert victim_state(victim["number"]) == before

    # The paths were right: the victim's own token opens every GET endpoint.
    opened = 0
    for route, callback in customer_routes():
        if "get" not in methods_of(callback):
            continue
        path = concrete_path(route, victim)
        for client, token in [(Client(), victim["customer"].token)]:
            response = call(client, "get", path, token=token)
            if response.status_code == 405 and view_class(callback) is None:
                continue  # a function view that only takes POST
            # 200, or a redirect to another page of the same order (a form's next step, or
            # the clean URL after the web page exchanged the token for a session).
            assert response.status_code == 200 or (
                response.status_code in (302, 303) and victim["number"] in response["Location"]
            ), (path, response.status_code, response.content[:300])
            opened += 1
    owner = Client()
    owner.force_login(victim["customer"].user)
    assert call(owner, "get", f"/api/orders/{victim['number']}/").status_code == 200
    figure(
        "access control, customer endpoints",
        f"{len(customer_routes())} routes, {checked} requests as anonymous / another "
        f"customer's token, link or session / a forged token: 0 answers other than 401/404/405, "
        f"0 with the victim's data; the owner opens all {opened} GET endpoints",
    )


ACCOUNT_PARAMETERS = {"purpose": "marketing_email"}


def account_path(route: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(2)
        assert name in ACCOUNT_PARAMETERS, (
            f"account route {route!r} has a parameter {name!r}: add it to ACCOUNT_PARAMETERS"
        )
        return ACCOUNT_PARAMETERS[name]

    return "/" + re.sub(r"<((?:\w+:)?)(\w+)>", value, route)


def test_account_endpoints_show_only_the_callers_own_data(victim, attacker, figure):
    """/api/me/ (R30, R31): anonymous callers and forged tokens get 401/403/404; another
    customer (session, order token, or the subject token of their own email) gets only
    their own data, never the victim's; the victim sees hers."""
    routes_ = account_routes()
    if not routes_:
        pytest.skip("no /api/me/ endpoints routed yet (issue 7)")
    from legal import access as legal_access

    before = victim_state(victim["number"])
    other_session = Client()
    other_session.force_login(attacker.user)
    subject = legal_access.subject_token(ATTACKER["email"])
    callers = {
        "other customer's session": (other_session, {}),
        "other customer's order token": (Client(), {"X-Order-Token": attacker.token}),
        "other customer's subject token": (Client(), {"Authorization": f"Bearer {subject}"}),
    }
    checked, failures = 0, []
    for route, callback in routes_:
        path = account_path(route)
        for method in methods_of(callback):
            for who, (client, headers) in [
                ("anonymous", (Client(), {})),
                ("forged subject token", (Client(), {"X-Subject-Token": "forged"})),
            ]:
                cache.clear()
                response = (
                    getattr(client, method)(path, headers=headers)
                    if method == "get"
                    else (
                        getattr(client, method)(
                            path, {}, content_type="application/json", headers=headers
                        )
                    )
                )
                if response.status_code not in {401, 403, 404, 405} or leaked(response.content):
                    failures.append(f"{method.upper()} {path} as {who}: {response.status_code}")
                checked += 1
            if method != "get":
                continue  # unsafe calls change the caller's own data only: not probed here
            for who, (client, headers) in callers.items():
                cache.clear()
                response = client.get(path, headers=headers)
                if response.status_code >= 500 or leaked(response.content):
                    failures.append(
                        f"GET {path} as {who}: {response.status_code} "
                        f"leaked={leaked(response.content)}"
                    )
                checked += 1
    assert failures == [], "\n".join(failures)
    assert victim_state(victim["number"]) == before

    owner = Client()
    owner.force_login(victim["customer"].user)
    export = owner.get("/api/me/data/")
    if export.status_code != 404:
        assert export.status_code == 200
        assert VICTIM["email"] in export.content.decode()
    figure(
        "access control, account endpoints",
        f"{len(routes_)} /api/me/ routes, {checked} requests as anonymous, forged token or "
        "another customer: 0 with the victim's data",
    )


# --- Staff endpoints --------------------------------------------------------------------------


def user_with(username: str, *perms: str, staff: bool = True) -> User:
    user = User.objects.create_user(username, is_staff=staff)  # no password: fast, force_login
    wanted = set(perms)
    user.user_permissions.set(
        [
            p.pk
            for p in Permission.objects.select_related("content_type")
            if f"{p.content_type.app_label}.{p.codename}" in wanted
        ]
    )
    assert user.user_permissions.count() == len(wanted), wanted
    return User.objects.get(pk=user.pk)


def all_permissions_but(excluded: str) -> list[str]:
    return [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.select_related("content_type")
        if f"{p.content_type.app_label}.{p.codename}" != excluded
    ]


def staff_path(route: str, victim: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(2)
        if name == "number":
            return victim["number"]
        return "999999"  # a shipment or other object id: the permission is checked first

    return "/" + re.sub(r"<((?:\w+:)?)(\w+)>", value, route)


def test_staff_endpoints_need_their_own_permission(victim, figure):
    """Section 10: /api/staff/ needs a logged-in staff user with the view's model
    permission (session or token); everyone else is refused, and nothing changes."""
    assert staff_routes(), "no staff endpoints found"
    before = victim_state(victim["number"])
    customer = user_with("plain-customer", staff=False)
    checked = 0
    for route, callback in staff_routes():
        cls = view_class(callback)
        required = getattr(cls, "required_permission", None)
        assert required, f"{route}: a staff endpoint must name its required_permission"
        almost = user_with(f"almost-{checked}", *all_permissions_but(required))
        almost_token = Token.objects.create(user=almost).key
        allowed = user_with(f"allowed-{checked}", required)
        path = staff_path(route, victim)
        for method in methods_of(callback):
            refused = [
                ("anonymous", Client(), {}),
                ("customer session", Client(), {}),
                ("staff without the permission, session", Client(), {}),
                (
                    "staff without the permission, token",
                    Client(),
                    {"Authorization": f"Token {almost_token}"},
                ),
            ]
            refused[1][1].force_login(customer)
            refused[2][1].force_login(almost)
            for who, client, headers in refused:
                cache.clear()
                response = (
                    getattr(client, method)(
                        path, {}, content_type="application/json", headers=headers
                    )
                    if method != "get"
                    else client.get(path, headers=headers)
                )
                assert response.status_code in {401, 403}, (who, method, path, response.content)
                assert leaked(response.content) == []
                checked += 1
            # With the permission the request gets past the door (whatever the outcome).
            client = Client()
            client.force_login(allowed)
            response = (
                client.get(path)
                if method == "get"
                else getattr(client, method)(
                    path,
                    {"barcode": "CE000000001LV"} if "shipments" in path else {},
                    content_type="application/json",
                )
            )
            assert response.status_code not in {401, 403}, (method, path, response.content)
            assert response.status_code < 500, (method, path, response.content)
    # Only the permitted requests may have changed something; the refused ones did not.
    assert victim_state(victim["number"])["refunds"] == before["refunds"]
    figure(
        "access control, staff endpoints",
        f"{len(staff_routes())} routes, {checked} requests without the required permission "
        "(anonymous, customer, staff with every other permission by session and by token): "
        "all 401/403",
    )


# --- Admin actions -----------------------------------------------------------------------------


def admin_actions():
    """(model admin, action name, permissions it declares) for every admin action."""
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or []:
            func = action if callable(action) else getattr(model_admin, action)
            perms = getattr(func, "allowed_permissions", None)
            name = getattr(func, "__name__", str(action))
            yield model, model_admin, name, perms


def model_permissions(model) -> list[str]:
    opts = model._meta
    return [
        f"{opts.app_label}.{p.codename}"
        for p in Permission.objects.filter(content_type__app_label=opts.app_label).filter(
            content_type__model=opts.model_name
        )
    ]


def gating_permissions(model, perm: str) -> list[str]:
    """The model permissions behind an action's declared permission: `change` is
    change_<model>; a custom one (`approve`) is the model's permission named after it
    (approve_refund)."""
    opts = model._meta
    if perm in ("view", "add", "change", "delete"):
        return [f"{opts.app_label}.{perm}_{opts.model_name}"]
    return [p for p in model_permissions(model) if p.split(".")[1].startswith(f"{perm}_")]


def offered(model_admin, rf, user: User) -> set[str]:
    request = rf.get("/admin/")
    request.user = user
    return set(model_admin.get_actions(request))


def test_every_admin_action_declares_permissions_and_is_hidden_without_them(rf, figure):
    """Every admin action names the permissions it needs. A staff user with only the view
    permission is offered none that needs more; one with every permission of the model
    but the action's own is not offered it."""
    checked = 0
    for model, model_admin, name, perms in admin_actions():
        assert perms, f"{model.__name__} admin action {name!r} declares no permissions"
        everything = model_permissions(model)
        if set(perms) != {"view"}:
            viewer = user_with(
                f"v{checked}", f"{model._meta.app_label}.view_{model._meta.model_name}"
            )
            assert name not in offered(model_admin, rf, viewer), f"{model.__name__}.{name}"
            checked += 1
        for perm in perms:
            for gate in gating_permissions(model, perm):
                user = user_with(f"g{checked}", *[p for p in everything if p != gate])
                assert name not in offered(model_admin, rf, user), (
                    f"{model.__name__}.{name} offered without {gate}"
                )
                checked += 1
    figure(
        "access control, admin actions",
        f"{len(list(admin_actions()))} actions, {checked} users without the permission: "
        "none offered the action",
    )


def test_approving_a_refund_is_its_own_permission(victim, client):
    """orders.approve_refund: a clerk who may change refunds cannot approve them."""
    from orders.models import Refund, RefundStatus

    refund = Refund.objects.filter(order__number=victim["number"]).first()
    if refund is None or refund.status != RefundStatus.READY:
        from orders.services.refunds import create_refund

        refund = create_refund(
            order_id=victim["customer"].order.pk, amount=Decimal("1.00"), reason="staff"
        )
    changelist = "/admin/orders/refund/"
    clerk = user_with("clerk", "orders.view_refund", "orders.change_refund")
    client.force_login(clerk)
    response = client.post(
        changelist, {"action": "approve", "_selected_action": [refund.pk]}, follow=True
    )
    assert response.status_code == 200
    refund.refresh_from_db()
    assert refund.status == RefundStatus.READY

    approver = user_with(
        "approver", "orders.view_refund", "orders.change_refund", "orders.approve_refund"
    )
    client.force_login(approver)
    client.post(changelist, {"action": "approve", "_selected_action": [refund.pk]}, follow=True)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.APPROVED


# --- Throttling ---------------------------------------------------------------------------------

TINY_RATES = {"checkout": "2/min", "token_guess": "2/min", "webhook": "2/min"}


def redis_cache_location() -> str | None:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    return broker if broker.startswith("redis://") else None


@pytest.fixture(params=["locmem", "redis"])
def throttle_cache(request, settings, monkeypatch):
    """Tiny rates, on the local-memory cache and on Redis (production's CACHE_URL)."""
    if request.param == "redis":
        location = redis_cache_location()
        if location is None:
            pytest.skip("needs Redis (CELERY_BROKER_URL=redis://...) for the Redis cache")
        # The broker's database: a key prefix of this test only, never a FLUSHDB.
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": location,
                "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}",
                "TIMEOUT": 120,
            }
        }
    else:
        cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", TINY_RATES)
    yield request.param


def assert_third_is_429(send) -> dict:
    first, second, third = send(), send(), send()
    assert first.status_code != 429 and second.status_code != 429
    assert third.status_code == 429, third.content
    assert third["Content-Type"].startswith("application/problem+json")
    body = third.json()
    assert body["status"] == 429
    assert isinstance(body["retry_after"], int) and 0 < body["retry_after"] <= 60
    assert int(third["Retry-After"]) == body["retry_after"]
    return body


def test_throttle_placing_orders(throttle_cache, catalogue, client):
    """checkout scope: the 3rd order attempt within the minute gets 429 problem+json."""
    assert_third_is_429(lambda: client.post("/api/orders/", {}, content_type="application/json"))


def test_throttle_guessing_order_tokens(throttle_cache, catalogue, client):
    """token_guess scope: the 3rd wrong guess gets 429, also for another order number."""
    numbers = iter(["AAAA1111", "BBBB2222", "CCCC3333"])
    assert_third_is_429(
        lambda: client.get(
            f"/api/orders/{next(numbers)}/", headers={"X-Order-Token": tokens.new_secret()}
        )
    )


@pytest.mark.parametrize("path", ["/api/webhooks/stripe/", "/api/webhooks/omniva/"])
def test_throttle_webhooks(throttle_cache, client, path):
    """webhook scope: the 3rd unsigned delivery within the minute gets 429."""
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        pytest.skip(f"{path} is not routed yet")
    match = resolve(path)
    if match.url_name is None and match.func.__name__ == "api_not_found":
        pytest.skip(f"{path} is not routed yet")
    assert_third_is_429(
        lambda: client.post(path, json.dumps({"id": "evt"}), content_type="application/json")
    )
