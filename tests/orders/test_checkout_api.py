"""POST /api/orders/ and the customer endpoints (R1-R9, DESIGN.md section 10)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import IdempotencyRecord, Order
from shop.models import Product
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    ProductFactory,
    TermsVersionFactory,
    place_test_order,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop_ready():
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
    ProductFactory(sku="KEU-001", price=Decimal("18.90"), stock=10)
    ProductFactory(sku="KEU-002", price=Decimal("21.50"), stock=10, sealed_hygiene=True)


def body(**overrides):
    data = {
        "customer": {
            "first_name": "Anna",
            "last_name": "Bērziņa",
            "email": "Anna@Example.lv",
            "phone": "20000000",
            "is_consumer": True,
            "company_name": None,
            "company_reg_no": None,
        },
        "capacity": "adult",
        "delivery": {
            "method": "omniva_parcel_machine",
            "parcel_machine_id": "9001",
            "address": None,
        },
        "lines": [{"sku": "KEU-001", "quantity": 2}],
        "accepted_terms_version": "2026-01",
        "consents": {"marketing_email": False},
    }
    for key, value in overrides.items():
        data[key] = value
    return data


def post(client, data, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/orders/", data, content_type="application/json", headers=headers)


def test_r1_order_placed_with_contract_fields(client, shop_ready):
    """R1, R2, R6, R9: 201 with the documented fields, money as strings with 2 decimals."""
    response = post(client, body())
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "placed"
    assert data["goods_total"] == "37.80"
    assert data["delivery_fee"] == "2.00"
    assert data["total"] == "39.80"
    assert data["currency"] == "EUR"
    assert data["access_token"]
    assert (
        data["invoice"]["number"].startswith("KEU-2026-") or data["invoice"]["number"][:4] == "KEU-"
    )
    assert data["invoice"]["payment_reference"] == data["invoice"]["number"]
    assert data["invoice"]["due_date"]
    assert data["contact_deadline"]
    assert (
        data["lines"][0] | {"sku": "KEU-001", "quantity": 2, "unit_price": "18.90"}
        == data["lines"][0]
    )
    order = Order.objects.get(number=data["number"])
    assert order.terms_version.version == "2026-01"
    assert order.phone == "+37120000000"  # R3: E.164
    assert order.email == "anna@example.lv"


def test_r1_refused_without_accepting_the_terms_in_force(client, shop_ready):
    """R1 (T1.5): the accepted version must be the one in force."""
    response = post(client, body(accepted_terms_version="2019-01"))
    assert response.status_code == 422
    assert response.json()["code"] == "terms_not_accepted"
    assert response.json()["version_in_force"] == "2026-01"
    assert not Order.objects.exists()
    assert Product.objects.get(sku="KEU-001").stock == 10


def test_r2_price_snapshot_never_changes(client, shop_ready):
    """R2 (T1.8): later catalogue changes never change an order."""
    data = post(client, body()).json()
    Product.objects.filter(sku="KEU-001").update(price=Decimal("99.00"))
    order = Order.objects.get(number=data["number"])
    assert order.lines.get().unit_price == Decimal("18.90")
    assert order.total == Decimal("39.80")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["customer"].pop("first_name"), "customer.first_name"),
        (lambda d: d["customer"].update(email="not-an-email"), "customer.email"),
        (lambda d: d["customer"].update(phone="12"), "customer.phone"),
        (lambda d: d.update(capacity="minor_under_14"), "capacity"),
        (lambda d: d.update(lines=[]), "lines"),
        (lambda d: d.update(lines=[{"sku": "KEU-001", "quantity": 0}]), "lines.0.quantity"),
        (lambda d: d["delivery"].update(parcel_machine_id=None), "delivery.parcel_machine_id"),
    ],
)
def test_r3_r5_invalid_input_is_a_clear_field_error(client, shop_ready, mutate, field):
    """R3 mandatory data, R5 capacity: 400 problem+json naming the field; nothing changes."""
    data = copy.deepcopy(body())
    mutate(data)
    response = post(client, data)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("address", "field"),
    [
        (
            {
                "street": "Brīvības iela 1",
                "city": "Tallinn",
                "postal_code": "10111",
                "country": "EE",
            },
            "delivery.address.country",
        ),
        (
            {"street": "Brīvības iela 1", "city": "Rīga", "postal_code": "1050", "country": "LV"},
            "delivery.address.postal_code",
        ),
    ],
)
def test_r4_latvia_only(client, shop_ready, address, field):
    """R4 (T5.1): courier addresses in Latvia, postal code LV-NNNN."""
    data = body(delivery={"method": "omniva_courier", "address": address})
    response = post(client, data)
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]]


def test_r4_courier_to_latvian_address(client, shop_ready):
    address = {
        "street": "Brīvības iela 1",
        "city": "Rīga",
        "postal_code": "lv-1050",
        "country": "LV",
    }
    response = post(client, body(delivery={"method": "omniva_courier", "address": address}))
    assert response.status_code == 201
    order = Order.objects.get()
    assert (order.street, order.postal_code) == ("Brīvības iela 1", "LV-1050")


def test_r4_unknown_parcel_machine_refused(client, shop_ready):
    data = body(delivery={"method": "omniva_parcel_machine", "parcel_machine_id": "0000"})
    response = post(client, data)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "delivery.parcel_machine_id"


def test_r5_business_buyer_needs_company_and_is_not_a_consumer(client, shop_ready):
    data = body()
    data["customer"]["is_consumer"] = False
    response = post(client, data)
    assert response.status_code == 400
    assert {"customer.company_name", "customer.company_reg_no"} <= {
        e["field"] for e in response.json()["errors"]
    }
    data["customer"].update(company_name="SIA Frizētava", company_reg_no="40003000000")
    assert post(client, data).status_code == 201
    order = Order.objects.get()
    assert order.is_consumer is False and order.company_name == "SIA Frizētava"


def test_r8_stock_reserved_and_shortage_refused_with_skus(client, shop_ready):
    """R8: stock is reserved at placement; more than in stock is refused with the SKUs."""
    assert post(client, body(lines=[{"sku": "KEU-001", "quantity": 4}])).status_code == 201
    assert Product.objects.get(sku="KEU-001").stock == 6
    response = post(
        client,
        body(lines=[{"sku": "KEU-001", "quantity": 7}, {"sku": "KEU-002", "quantity": 1}]),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "insufficient_stock"
    # Issue 14: the SKUs short and what was asked, never the stock left.
    assert response.json()["short"] == [{"sku": "KEU-001", "requested": 7}]
    assert Product.objects.get(sku="KEU-001").stock == 6
    assert Product.objects.get(sku="KEU-002").stock == 10


def test_unknown_sku_is_a_field_error(client, shop_ready):
    response = post(client, body(lines=[{"sku": "NOPE", "quantity": 1}]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "unknown_sku"


def test_malformed_json_is_400_problem(client, shop_ready):
    response = client.post("/api/orders/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")


def test_idempotency_key_replays_and_conflicts(client, shop_ready):
    """Same key and body: the same response, no second order; other body: 409."""
    first = post(client, body(), key="k-1")
    again = post(client, body(), key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    other = post(client, body(lines=[{"sku": "KEU-002", "quantity": 1}]), key="k-1")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_order_is_visible_with_its_token_only(client, shop_ready):
    """Another order's token, or none, gets 404 and no data."""
    mine = post(client, body()).json()
    theirs = post(client, body()).json()
    url = f"/api/orders/{mine['number']}/"
    assert client.get(url, HTTP_X_ORDER_TOKEN=mine["access_token"]).status_code == 200
    for token in (theirs["access_token"], "", "guess"):
        response = client.get(url, HTTP_X_ORDER_TOKEN=token)
        assert response.status_code == 404
        assert mine["number"] not in response.content.decode()
    assert client.get(url).status_code == 404


def test_emailed_signed_link_is_not_an_api_credential(client, shop_ready):
    """Section 10: X-Order-Token is the access token returned once; an emailed link opens
    the order's web pages only (orders.web_access), never the API."""
    from orders.links import order_link_token
    from orders.models import Order

    data = post(client, body()).json()
    url = f"/api/orders/{data['number']}/"
    link = order_link_token(Order.objects.get(number=data["number"]))
    assert client.get(url, HTTP_X_ORDER_TOKEN=link).status_code == 404
    assert client.get(url, HTTP_X_ORDER_TOKEN=data["access_token"]).status_code == 200


def test_order_detail_fields(client, shop_ready):
    data = post(client, body()).json()
    detail = client.get(
        f"/api/orders/{data['number']}/", HTTP_X_ORDER_TOKEN=data["access_token"]
    ).json()
    for key in (
        "status",
        "cancel_reason",
        "lines",
        "goods_total",
        "delivery_fee",
        "total",
        "invoice",
        "amount_paid",
        "payments",
        "refunds",
        "contact_deadline",
        "delivered_at",
        "withdrawal_deadline",
    ):
        assert key in detail
    assert "access_token" not in detail
    assert detail["amount_paid"] == "0.00"


def test_r12_customer_confirms(client, shop_ready):
    data = post(client, body()).json()
    response = client.post(
        f"/api/orders/{data['number']}/confirm/", HTTP_X_ORDER_TOKEN=data["access_token"]
    )
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    assert Order.objects.get().contact_established_at is not None


def test_customer_cancels_before_dispatch_stock_released(client, shop_ready):
    data = post(client, body()).json()
    assert Product.objects.get(sku="KEU-001").stock == 8
    response = client.post(
        f"/api/orders/{data['number']}/cancel/", HTTP_X_ORDER_TOKEN=data["access_token"]
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_reason"] == "customer"
    assert Product.objects.get(sku="KEU-001").stock == 10
    again = client.post(
        f"/api/orders/{data['number']}/cancel/", HTTP_X_ORDER_TOKEN=data["access_token"]
    )
    assert again.status_code == 422


def test_staff_contact_needs_the_permission(client, shop_ready, staff_user):
    data = post(client, body()).json()
    url = f"/api/staff/orders/{data['number']}/contact/"
    assert client.post(url).status_code in (401, 403)
    client.force_login(staff_user(username="nobody"))
    assert client.post(url).status_code == 403
    client.force_login(staff_user("orders.record_contact", username="clerk"))
    response = client.post(url)
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"


def _checkout_queries(client, lines: int, prefix: str) -> int:
    for n in range(lines):
        ProductFactory(sku=f"{prefix}-{n:03d}", stock=5)
    data = body(lines=[{"sku": f"{prefix}-{n:03d}", "quantity": 1} for n in range(lines)])
    with CaptureQueriesContext(connection) as ctx:
        response = post(client, data)
    assert response.status_code == 201, response.json()
    # Savepoints are the test's own transaction nesting, not work the checkout does.
    return len([q for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]])


def test_checkout_query_count_does_not_depend_on_lines(client, shop_ready):
    """Section 12: the same number of queries for 1 and for 30 lines, at most 25."""
    _checkout_queries(client, 1, "W")  # warm-up: the invoice counter row exists from now on
    one = _checkout_queries(client, 1, "A")
    thirty = _checkout_queries(client, 30, "B")
    assert one == thirty
    assert thirty <= 25


def test_an_order_number_already_taken_is_drawn_again(monkeypatch):
    """R1: order numbers are random and unique; a clash draws another, nothing fails and
    the order gets exactly one history row."""
    from orders.services import checkout

    first = place_test_order([("KEU-001", 1)])
    numbers = iter([first.order.number, "NEWNUMB2"])
    monkeypatch.setattr(checkout, "new_order_number", lambda: next(numbers))
    second = place_test_order([("KEU-002", 1)])
    assert second.order.number == "NEWNUMB2"
    assert second.order.history.count() == 1
    assert first.order.history.count() == 1
