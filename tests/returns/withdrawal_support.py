"""Orders for the withdrawal tests: placed through checkout, paid, shipped and delivered."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders.models import Order, PaymentMethod
from orders.services.locks import lock_order
from orders.services.payments import record_payment
from tests.factories import place_test_order

IBAN = "LV80BANK0000435195001"
HOLDER = "Anna Bērziņa"


def paid_order(
    lines: list[tuple[str, int]] | None = None,
    *,
    prices: dict[str, Decimal] | None = None,
    placed_at: datetime | None = None,
    **kwargs,
):
    """Placed and paid in full by bank transfer; returns (order, access token)."""
    placed = place_test_order(lines, prices=prices, now=placed_at, **kwargs)
    record_payment(
        order_id=placed.order.pk,
        amount=placed.order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=placed_at or timezone.now(),
        payer_name="Anna Bērziņa",
        payer_iban="LV97HABA0012345678910",
    )
    return Order.objects.get(pk=placed.order.pk), placed.access_token


def ship(order: Order, *, at: datetime) -> Order:
    with transaction.atomic():
        locked = lock_order(order.pk)
        locked.ship(at=at)
        locked.save()
    return Order.objects.get(pk=order.pk)


def deliver(order: Order, *, at: datetime) -> Order:
    """Shipped a day before `at` (if not yet) and delivered at `at`."""
    with transaction.atomic():
        locked = lock_order(order.pk)
        if locked.status == "paid":
            locked.ship(at=at - timedelta(days=1))
        locked.deliver(at=at)
        locked.save()
    return Order.objects.get(pk=order.pk)


def delivered_order(
    lines: list[tuple[str, int]] | None = None,
    *,
    prices: dict[str, Decimal] | None = None,
    delivered_at: datetime | None = None,
    **kwargs,
):
    """(order, token): paid two days before delivery, delivered at `delivered_at`."""
    delivered_at = delivered_at or timezone.now() - timedelta(days=1)
    order, token = paid_order(
        lines, prices=prices, placed_at=delivered_at - timedelta(days=2), **kwargs
    )
    return deliver(order, at=delivered_at), token


def withdrawal_body(lines=None, **overrides) -> dict:
    body = {"lines": lines or [], "iban": IBAN, "account_holder": HOLDER, "reason": ""}
    body.update(overrides)
    return body


def make_staff(*perms: str, username: str = "clerk", password: str = "pw-for-tests"):  # noqa: S107
    """A staff user with the given model permissions ("app_label.codename")."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username=username, password=password, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh permission cache


def shop_ready() -> None:
    """What checkout needs in a transactional test (which flushes the data migrations'
    rows): VAT rates, the delivery tariff, terms and privacy versions, a parcel machine."""
    from datetime import UTC, date

    from delivery.models import DeliveryTariff
    from shop.models import VatRate
    from tests.factories import (
        ParcelMachineFactory,
        PrivacyPolicyVersionFactory,
        TermsVersionFactory,
    )

    for category, rate, effective_from in [
        ("standard", Decimal("21.00"), date(2012, 7, 1)),
        ("reduced", Decimal("12.00"), date(2011, 1, 1)),
    ]:
        VatRate.objects.get_or_create(
            category=category, effective_from=effective_from, defaults={"rate": rate}
        )
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        )
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
