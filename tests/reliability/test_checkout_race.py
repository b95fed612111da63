"""Invoice numbers and stock under 100 parallel checkouts (DESIGN.md section 12; R8, R9).

100 `POST /api/orders/` requests on real threads (48 connections at once), each from its
own client address, all buying the last 70 units of one product (and one of a product
with plenty), half of them listing the lines the other way round; ten of them are five
pairs sent twice with the same Idempotency-Key. Goal: exactly 70 orders, stock 0 and
never below, invoice numbers 000001..000070 each once, no 5xx, one order per key.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from orders.models import IdempotencyRecord, Invoice, InvoiceCounter, Order, OrderLine
from orders.services.idempotency import stored_key
from shop.calendar import riga_date
from shop.models import Product
from tests.conftest import requires_postgresql
from tests.factories import ProductFactory
from tests.reliability.conftest import errors, run_parallel

CHECKOUTS = 100
LAST_UNITS = 70
PLENTY = 1000


def order_body(index: int) -> dict:
    lines = [{"sku": "HOT-LAST", "quantity": 1}, {"sku": "HOT-PLENTY", "quantity": 1}]
    if index % 2:
        lines.reverse()  # locks are taken in SKU order whatever the order of the lines
    return {
        "customer": {
            "first_name": "Anna",
            "last_name": "Bērziņa",
            "email": f"buyer{index % 90}@example.lv",
            "phone": "20000000",
            "is_consumer": True,
            "company_name": None,
            "company_reg_no": None,
        },
        "capacity": "adult",
        "delivery": {"method": "omniva_parcel_machine", "parcel_machine_id": "9001"},
        "lines": lines,
        "accepted_terms_version": "2026-01",
        "consents": {"marketing_email": False},
    }


def idempotency_key(index: int) -> str | None:
    """Requests 90..99 are five pairs: 90 and 95 share a key, 91 and 96, ..."""
    return f"race-pair-{index % 5}" if index >= 90 else None


def client_address(index: int) -> str:
    """Both requests of a pair come from one client (a key is scoped to its client)."""
    if idempotency_key(index):
        return f"10.9.250.{index % 5 + 1}"
    return f"10.9.{index // 200}.{index % 200 + 1}"


@pytest.mark.postgres
@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_100_parallel_checkouts_gapless_invoices_and_stock_never_negative(shop_ready, figure):
    """R8, R9 (section 12): 100 parallel checkouts through the API for the last 70 units."""
    ProductFactory(sku="HOT-LAST", price=Decimal("12.00"), stock=LAST_UNITS)
    ProductFactory(sku="HOT-PLENTY", price=Decimal("8.00"), stock=PLENTY)

    def checkout(index: int) -> tuple[int, dict]:
        client = Client(REMOTE_ADDR=client_address(index))
        key = idempotency_key(index)
        body = order_body(index % 5 + 90 if key else index)
        response = client.post(
            "/api/orders/",
            body,
            content_type="application/json",
            headers={"Idempotency-Key": key} if key else {},
        )
        return response.status_code, response.json()

    results = run_parallel(CHECKOUTS, checkout)

    assert errors(results) == []
    answers = [value for _, value in results]
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 422}, statuses
    for status, body in answers:
        if status == 422:
            assert body["code"] == "insufficient_stock", body

    # Exactly the stock that was there was sold; never below zero.
    assert Order.objects.count() == LAST_UNITS
    assert Product.objects.get(sku="HOT-LAST").stock == 0
    assert Product.objects.get(sku="HOT-PLENTY").stock == PLENTY - LAST_UNITS
    assert sum(OrderLine.objects.filter(sku="HOT-LAST").values_list("quantity", flat=True)) == (
        LAST_UNITS
    )

    # R9: invoice numbers 1..70 of the year, each once, one per order.
    series, year = settings.SHOP["INVOICE_SERIES"], riga_date(timezone.now()).year
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"{series}-{year}-{n:06d}" for n in range(1, LAST_UNITS + 1)]
    assert len(set(numbers)) == LAST_UNITS
    assert InvoiceCounter.objects.get(series=series, year=year).last_number == LAST_UNITS
    assert all(order.invoices.count() == 1 for order in Order.objects.all())

    # One order per Idempotency-Key; both requests of a pair that got 201 saw that order.
    placed_by_key: dict[str, set[str]] = defaultdict(set)
    for index, (status, body) in enumerate(answers):
        key = idempotency_key(index)
        if key and status == 201:
            placed_by_key[key].add(body["number"])
    for key, numbers_for_key in placed_by_key.items():
        assert len(numbers_for_key) == 1, (key, numbers_for_key)
        client = f"anonymous:{client_address(int(key.rsplit('-', 1)[1]) + 90)}"
        record = IdempotencyRecord.objects.get(key=stored_key(key, client=client))
        assert record.order.number in numbers_for_key
    orders_from_answers = {body["number"] for status, body in answers if status == 201}
    assert orders_from_answers == set(Order.objects.values_list("number", flat=True))

    figure(
        "invoice numbers under 100 parallel checkouts",
        f"{statuses[201]} answers 201 ({LAST_UNITS} orders, invoices 000001..{LAST_UNITS:06d} "
        f"gapless and unique), {statuses[422]} answers 422 insufficient_stock, 0 5xx; "
        f"stock {LAST_UNITS} -> 0 (never negative)",
    )
