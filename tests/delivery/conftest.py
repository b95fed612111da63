"""Wiring of the delivery tests: the fake Omniva server, paid orders, signed webhook calls."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from delivery.fake_omniva import FakeOmniva
from delivery.webhooks import sign
from orders.models import Order, PaymentMethod
from orders.services.payments import record_payment
from tests.factories import place_test_order

WEBHOOK_SECRET = "test-webhook-secret"
PAYER_IBAN = "LV80BANK0000435195001"


@pytest.fixture
def fake_omniva(settings):
    """The real Omniva client against the fake server on loopback."""
    with FakeOmniva(timeout_delay=1.0) as fake:
        settings.OMNIVA_API_URL = fake.url
        settings.OMNIVA_USERNAME = fake.username
        settings.OMNIVA_PASSWORD = fake.password
        settings.OMNIVA_CUSTOMER_CODE = fake.customer_code
        settings.OMNIVA_TIMEOUT = 0.5
        settings.COURIER_ADAPTER = ""
        yield fake


@pytest.fixture
def courier_off(settings):
    settings.OMNIVA_API_URL = ""
    settings.COURIER_ADAPTER = ""


@pytest.fixture(autouse=True)
def _webhook_secret(settings):
    settings.OMNIVA_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture(autouse=True)
def _wide_event_time_window(settings):
    """These tests use fixed 2026 event times, with and without a frozen clock; the
    window of accepted event times (issue 14) is tested in tests/reliability/
    test_attack_input.py with the production defaults."""
    settings.COURIER_EVENT_MAX_AGE_DAYS = 365 * 100
    settings.COURIER_EVENT_MAX_AHEAD_DAYS = 365 * 100


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch):
    """The client's retry backoff is asserted, never slept."""
    monkeypatch.setattr("delivery.couriers.omniva.backoff_sleep", lambda seconds: None)


def ensure_shop_data() -> None:
    """Transactional tests flush data-migration rows: the VAT rates and the tariff."""
    from delivery.models import DeliveryTariff
    from shop.models import VatRate

    for category, rate, since in [
        ("standard", Decimal("21.00"), date(2012, 7, 1)),
        ("reduced", Decimal("12.00"), date(2011, 1, 1)),
    ]:
        VatRate.objects.get_or_create(
            category=category, effective_from=since, defaults={"rate": rate}
        )
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        )


def paid_order(goods: str = "20.00", *, lines=None, at=None, **kwargs) -> Order:
    """A consumer's order of `goods` EUR plus the EUR 2.00 fee, paid in full."""
    ensure_shop_data()
    lines = lines or [("KEU-001", 1)]
    prices = kwargs.pop("prices", None) or {lines[0][0]: Decimal(goods)}
    placed = place_test_order(lines, prices=prices, now=at, **kwargs)
    order = placed.order
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=at or timezone.now(),
        payer_name="Anna Bērziņa",
        payer_iban=PAYER_IBAN,
    )
    order = Order.objects.get(pk=order.pk)
    order.access_token = placed.access_token  # for GET /api/orders/{number}/
    return order


def shipped_order(barcode: str, goods: str = "20.00", **kwargs) -> Order:
    """A paid order whose parcel staff registered by hand with `barcode`."""
    from delivery.services import register_shipment

    order = paid_order(goods, **kwargs)
    token = order.access_token
    register_shipment(order_id=order.pk, barcode=barcode)
    order = Order.objects.get(pk=order.pk)
    order.access_token = token
    return order


def signed_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp=None) -> dict:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "HTTP_X_OMNIVA_TIMESTAMP": stamp,
        "HTTP_X_OMNIVA_SIGNATURE": sign(secret=secret, timestamp=stamp, body=body),
    }


def event_body(barcode: str, event: str, *, event_id: str, occurred_at: str, **extra) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "barcode": barcode,
            "event": event,
            "occurred_at": occurred_at,
            "location": extra.get("location", ""),
            "reason": extra.get("reason", ""),
        }
    ).encode()


def post_event(client, barcode: str, event: str, *, event_id: str, occurred_at: str, **extra):
    body = event_body(barcode, event, event_id=event_id, occurred_at=occurred_at, **extra)
    return client.post(
        "/api/webhooks/omniva/",
        data=body,
        content_type="application/json",
        **signed_headers(body),
    )


@pytest.fixture
def shipping_clerk(db):
    user = User.objects.create_user("warehouse", password="pw-for-tests", is_staff=True)
    for codename in ("add_shipment", "view_shipment"):
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="delivery", codename=codename)
        )
    return User.objects.get(pk=user.pk)
