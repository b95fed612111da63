"""The order API's answer is written out by hand for speed (`OrderSerializer.to_representation`);
it must say exactly what DRF renders from the declared fields, which are the schema."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from orders import selectors
from orders.api.serializers import OrderSerializer, PlacedOrderSerializer
from orders.models import Order, PaymentMethod, RefundReason
from orders.services.lifecycle import cancel_order
from orders.services.payments import record_payment
from orders.services.refunds import create_refund
from orders.services.substitution import mark_line_unavailable
from tests.factories import ProductFactory, place_test_order
from tests.returns.claims_support import delivered_order

pytestmark = pytest.mark.django_db


def both(order: Order, serializer=OrderSerializer, **context) -> tuple[dict, dict]:
    summary = selectors.order_summary(order)
    fast = serializer(order, context={"summary": summary, **context})
    reference = serializer(order, context={"summary": summary, **context})
    return fast.data, reference.field_by_field(order)


def reread(order: Order) -> Order:
    return selectors.order_with_details().get(pk=order.pk)


@pytest.mark.parametrize("language", ["lv", "en"])
def test_placed_order_answer_equals_the_declared_fields(language):
    placed = place_test_order([("KEU-001", 2), ("KEU-002", 1)])
    order = selectors.with_placed_details(placed.order, lines=placed.lines, invoice=placed.invoice)
    with translation.override(language):
        fast, reference = both(order, PlacedOrderSerializer, access_token=placed.access_token)
    assert fast == reference
    assert fast["access_token"] == placed.access_token
    assert list(fast) == list(reference)  # the same keys in the same order


def test_paid_and_partly_refunded_order_answer_equals_the_declared_fields():
    placed = place_test_order([("KEU-001", 1)], prices={"KEU-001": Decimal("50.00")})
    record_payment(
        order_id=placed.order.pk,
        amount=placed.order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_name="Anna Bērziņa",
        payer_iban="LV80BANK0000435195001",
    )
    create_refund(order_id=placed.order.pk, amount=Decimal("0.01"), reason=RefundReason.STAFF)
    fast, reference = both(reread(placed.order))
    assert fast == reference
    assert (
        fast["amount_paid"] == f"{placed.order.total:.2f}"
        and fast["refunds"][0]["amount"] == "0.01"
    )
    assert fast["estimated_delivery"] is not None


def test_delivered_order_answer_equals_the_declared_fields():
    order, _token = delivered_order(delivered_at=timezone.now() - timedelta(days=3))
    fast, reference = both(reread(order))
    assert fast == reference
    assert fast["withdrawal_deadline"] is not None and fast["delivered_at"] is not None


def test_substitution_and_cancellation_answers_equal_the_declared_fields():
    """R13: an unavailable line with its substitute; then the order cancelled."""
    placed = place_test_order([("KEU-001", 1), ("KEU-002", 1)])
    ProductFactory(sku="KEU-099", price=Decimal("12.34"))
    mark_line_unavailable(line_id=placed.lines[0].pk, substitute_sku="KEU-099")
    fast, reference = both(reread(placed.order))
    assert fast == reference
    assert fast["lines"][0]["substitute"]["sku"] == "KEU-099"
    cancel_order(order_id=placed.order.pk, reason="customer", at=timezone.now())
    fast, reference = both(reread(placed.order))
    assert fast == reference
    assert fast["status"] == "cancelled"
