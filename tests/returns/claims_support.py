"""Wiring for the conformity-claim tests: delivered orders and claims through the services."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import time_machine
from django.utils import timezone

from orders.models import Order, PaymentMethod
from orders.services.payments import record_payment
from returns.claims import services
from returns.claims.services import ClaimLineRequest
from shop.calendar import RIGA
from shop.models import Product
from tests.factories import place_test_order

LV_IBAN = "LV80BANK0000435195001"


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def delivered_order(
    lines: list[tuple[str, int]] | None = None,
    *,
    delivered_at: datetime | None = None,
    prices: dict[str, Decimal] | None = None,
    warranty_months: dict[str, int] | None = None,
    customer: dict | None = None,
) -> tuple[Order, str]:
    """A paid order placed, shipped and delivered; returns the order and its access token.

    Placed and paid a week before `delivered_at` (default: two days ago), under time travel.
    """
    delivered_at = delivered_at or timezone.now() - timedelta(days=2)
    placed_at = delivered_at - timedelta(days=7)
    with time_machine.travel(placed_at, tick=False):
        placed = place_test_order(lines or [("KEU-001", 1)], prices=prices, customer=customer)
        order = placed.order
        record_payment(
            order_id=order.pk,
            amount=order.total,
            method=PaymentMethod.BANK_TRANSFER,
            received_at=placed_at,
            payer_name="Anna Bērziņa",
            payer_iban=LV_IBAN,
        )
    for sku, months in (warranty_months or {}).items():
        Product.objects.filter(sku=sku).update(warranty_months=months)
    order = Order.objects.get(pk=order.pk)
    order.ship(at=delivered_at - timedelta(days=1))
    order.deliver(at=delivered_at)
    order.save()
    return Order.objects.get(pk=order.pk), placed.access_token


def file_claim(
    order: Order,
    lines: list[tuple[str, int]] | None = None,
    *,
    remedy: str = "repair",
    discovered_on: date | None = None,
    **kwargs,
):
    return services.receive_claim(
        order_id=order.pk,
        lines=[ClaimLineRequest(sku=sku, quantity=q) for sku, q in lines or [("KEU-001", 1)]],
        description="The pump of the bottle is broken.",
        discovered_on=discovered_on or timezone.localdate(),
        remedy=remedy,
        **kwargs,
    )


def make_staff(username: str, *perms: str):
    """A staff user with the given permissions (`app_label.codename`)."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username=username, password="pw-for-tests", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh permission cache
