"""Withdrawals with the Omniva shipments of delivery/ (R16, R20): the return code, the
courier's `return_delivered` event, and stopping a shipment not registered yet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Shipment, ShipmentStatus
from delivery.services import CourierEventData, apply_courier_event, register_shipment
from orders.models import Order, RefundStatus
from returns.models import Withdrawal, WithdrawalStatus
from returns.withdrawals.services import receive_withdrawal
from tests.returns.withdrawal_support import HOLDER, IBAN, paid_order

pytestmark = pytest.mark.django_db

BARCODE = "CE123456789LV"


def event(name: str, *, at, barcode: str = BARCODE, event_id: str | None = None):
    return CourierEventData(
        event_id=event_id or f"{name}-{barcode}", barcode=barcode, event=name, occurred_at=at
    )


def withdraw(order: Order) -> Withdrawal:
    return receive_withdrawal(
        order_id=order.pk, lines=[], iban=IBAN, account_holder=HOLDER, channel="api"
    ).withdrawal


def test_r20_courier_return_delivered_marks_the_goods_received():
    order, _ = paid_order()
    shipment = register_shipment(order_id=order.pk, barcode=BARCODE)
    Shipment.objects.filter(pk=shipment.pk).update(return_code="RC-778899")
    delivered_at = timezone.now() - timedelta(days=2)
    apply_courier_event(event=event("delivered", at=delivered_at))
    order.refresh_from_db()
    assert order.status == "delivered"

    withdrawal = withdraw(order)
    assert withdrawal.return_code == "RC-778899"  # T7.5: shown to the customer
    assert withdrawal.refund.status == RefundStatus.PENDING

    arrived = timezone.now()
    result = apply_courier_event(event=event("return_delivered", at=arrived))
    assert result.result == "applied"
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.GOODS_RECEIVED
    assert withdrawal.goods_received_at == arrived
    again = apply_courier_event(event=event("return_delivered", at=arrived))
    assert again.result == "duplicate"


def test_r16_withdrawal_before_dispatch_stops_the_unregistered_shipment():
    order, _ = paid_order()
    waiting = Shipment.objects.create(order=order, direction="outbound")
    assert waiting.status == ShipmentStatus.PENDING
    withdrawal = withdraw(order)
    waiting.refresh_from_db()
    assert waiting.status == ShipmentStatus.CANCELLED
    assert withdrawal.before_dispatch and withdrawal.status == WithdrawalStatus.REFUNDED
    assert withdrawal.refund.status == RefundStatus.READY  # at once, not held
    order.refresh_from_db()
    assert order.status == "cancelled"


def test_r16_registered_shipment_is_not_stopped_the_refund_follows_the_return():
    order, _ = paid_order()
    register_shipment(order_id=order.pk, barcode=BARCODE)
    withdrawal = withdraw(order)
    assert not withdrawal.before_dispatch
    assert withdrawal.refund.status == RefundStatus.PENDING
    assert Shipment.objects.get(barcode=BARCODE).status == ShipmentStatus.REGISTERED


def test_r18_dispatch_and_delivery_emails_carry_the_withdrawal_button_link(
    django_capture_on_commit_callbacks,
):
    from django.core import mail

    order, _ = paid_order()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        register_shipment(order_id=order.pk, barcode=BARCODE)
    with django_capture_on_commit_callbacks(execute=True):
        apply_courier_event(event=event("delivered", at=timezone.now()))
    assert len(mail.outbox) == 2
    for email in mail.outbox:
        assert f"/orders/{order.number}/withdraw/?token=" in email.body
