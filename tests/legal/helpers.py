"""Helpers for the personal-data tests: real orders through the checkout service."""

from __future__ import annotations

from datetime import datetime

from legal.services import ledger
from orders.models import Order
from orders.services.checkout import DeliveryData
from orders.services.payments import record_payment
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    TermsVersionFactory,
    place_test_order,
)

COURIER = DeliveryData(
    method="omniva_courier", street="Brīvības iela 1", city="Rīga", postal_code="LV-1050"
)


def shop_ready() -> None:
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()


def place(
    *,
    email="anna@example.lv",
    first_name="Anna",
    last_name="Bērziņa",
    phone="+37120000000",
    now: datetime | None = None,
    courier=True,
    **kwargs,
) -> Order:
    placed = place_test_order(
        customer={"email": email, "first_name": first_name, "last_name": last_name, "phone": phone},
        delivery=COURIER if courier else None,
        now=now,
        **kwargs,
    )
    return Order.objects.get(pk=placed.order.pk)


def pay(order: Order, at: datetime, *, payer="Anna Bērziņa", iban="LV80BANK0000435195001"):
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method="bank_transfer",
        received_at=at,
        payer_name=payer,
        payer_iban=iban,
    )
    return Order.objects.get(pk=order.pk)


def deliver(order: Order, shipped_at: datetime, delivered_at: datetime) -> Order:
    """What the delivery app does (R14b): shipped, then delivered; then the ledger hook."""
    order = Order.objects.get(pk=order.pk)
    order.ship(at=shipped_at)
    order.save()
    order.deliver(at=delivered_at)
    order.save()
    ledger.order_delivered(order_id=order.pk)
    return Order.objects.get(pk=order.pk)


def ledger_rows(order: Order) -> dict:
    from legal.models import PersonalDataRecord

    return {r.category: r for r in PersonalDataRecord.objects.filter(order=order)}


def confirm_checkout_consents(order: Order) -> None:
    """R31, double opt-in: open the confirmation link of the email sent after checkout
    (the outbox row keeps the text without its link: the email is sent to read it)."""
    import re
    from urllib.parse import unquote

    from django.core import mail

    from legal.services import consents
    from shop import outbox
    from shop.models import OutboxMessage

    message = OutboxMessage.objects.filter(
        topic="email.send", payload__template="consent_confirm", payload__to__0=order.email
    ).latest("pk")
    outbox.deliver(message.pk)
    body = next(m.body for m in reversed(mail.outbox) if order.email in m.to)
    token = re.search(r"/privacy/consents/confirm/\?token=(\S+)", body)
    assert consents.confirm_consents(token=unquote(token.group(1)))


def settle_refunds(order: Order, at: datetime | None = None) -> None:
    """Approve, send and settle every open refund of the order (R28: an unsettled refund
    holds the order's personal data)."""
    from django.db import transaction
    from django.utils import timezone

    from orders.models import Refund, RefundStatus

    at = at or timezone.now()
    with transaction.atomic():
        for refund in Refund.objects.select_for_update().filter(order=order).order_by("pk"):
            if refund.status == RefundStatus.PENDING:
                refund.release()
            if refund.status == RefundStatus.READY:
                refund.approve(by=None, at=at)
            if refund.status == RefundStatus.APPROVED:
                refund.mark_sent(at=at)
            if refund.status == RefundStatus.SENT:
                refund.settle(at=at)
            refund.save()
