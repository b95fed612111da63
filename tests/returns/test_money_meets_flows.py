"""R32 where flows meet on one order (issue "Where flows meet on one order", findings 3, 5,
9 and 11): withdrawals, claims, card and bank payments and duplicate payments all draw on
the order's one money account."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import Order, PaymentMethod, Refund, RefundDestination, RefundReason
from orders.services.account import money_account
from orders.services.payments import record_payment
from returns.claims import services as claims
from returns.models import InspectionOutcome
from returns.withdrawals import services as withdrawals
from returns.withdrawals.services import LineInspection, RequestedLine
from tests.returns.claims_support import LV_IBAN, delivered_order, file_claim, make_staff

pytestmark = pytest.mark.django_db

PRICES = {"KEU-001": Decimal("30.00"), "KEU-002": Decimal("10.00")}


@pytest.fixture
def clerk():
    return make_staff("clerk", "returns.decide_claim", "returns.inspect_withdrawal")


def pay(order: Order, amount: str, *, method=PaymentMethod.BANK_TRANSFER, intent=None):
    return record_payment(
        order_id=order.pk,
        amount=Decimal(amount),
        method=method,
        received_at=timezone.now(),
        payer_name="Anna Bērziņa",
        payer_iban=LV_IBAN if method == PaymentMethod.BANK_TRANSFER else "",
        stripe_payment_intent=intent,
    )


def withdraw(order: Order, lines, **kwargs):
    return withdrawals.receive_withdrawal(
        order_id=order.pk,
        lines=[RequestedLine(sku, quantity) for sku, quantity in lines],
        channel="api",
        **kwargs,
    ).withdrawal


def overpayment_refunds(order: Order):
    return list(Refund.objects.filter(order=order, reason=RefundReason.OVERPAYMENT))


def test_r32_finding5_duplicate_payment_after_a_withdrawal_refund_comes_back_in_full():
    """R32 (T4.3): after a withdrawal refund of the whole order, a duplicate payment of
    32.00 is refunded in full (it was never refunded: paid - total - all refunds = 0)."""
    order, _ = delivered_order([("KEU-001", 1)], prices=PRICES)
    assert order.total == Decimal("32.00")
    withdraw(order, [])
    pay(order, "32.00")
    [refund] = overpayment_refunds(order)
    assert refund.amount == Decimal("32.00")
    assert refund.iban == LV_IBAN  # back to the account it came from


def test_r32_finding5_duplicate_payment_after_a_price_reduction_comes_back_in_full(clerk):
    """R32 (T4.3, R24): after a 5.00 price reduction, a duplicate 32.00 comes back whole,
    not 27.00."""
    order, _ = delivered_order([("KEU-001", 1)], prices=PRICES)
    claim = file_claim(order, remedy="price_reduction")
    claims.decide_price_reduction(
        claim_id=claim.pk,
        amounts={claim.lines.get().pk: Decimal("5.00")},
        reason="A scratch on the bottle.",
        by=clerk,
        obstacle="impossible",
        obstacle_reason="No spare bottles exist.",
    )
    pay(order, "32.00")
    [refund] = overpayment_refunds(order)
    assert refund.amount == Decimal("32.00")
    money = money_account(Order.objects.get(pk=order.pk))
    assert money.refunded_total == Decimal("37.00")
    assert money.overpayment == 0


def test_r32_finding9_a_withdrawn_and_refunded_line_is_not_refunded_again_by_a_claim(clerk):
    """R32 with R24: a line withdrawn and refunded, then terminated through a conformity
    claim, never gives back more than was paid for it."""
    order, _ = delivered_order([("KEU-001", 1), ("KEU-002", 1)], prices=PRICES)
    withdrawal = withdraw(order, [("KEU-001", 1)])
    line = order.lines.get(sku="KEU-001")
    withdrawals.record_goods_received(withdrawal_id=withdrawal.pk)
    wline = withdrawal.lines.get()
    withdrawals.inspect_withdrawal(
        withdrawal_id=withdrawal.pk,
        results={wline.pk: LineInspection(InspectionOutcome.ACCEPTED)},
        by=clerk,
    )
    claim = file_claim(order, [("KEU-001", 1)], remedy="termination")
    claims.decide_termination(
        claim_id=claim.pk,
        reason="It leaks.",
        by=clerk,
        obstacle="impossible",
        obstacle_reason="Discontinued.",
    )
    taken = sum(
        a.amount
        for r in Refund.objects.filter(order=order).exclude(status="failed")
        for a in r.allocations.filter(line=line)
    )
    assert taken == Decimal("30.00")
    assert not Refund.objects.filter(order=order, reason=RefundReason.CONFORMITY).exists()


def test_r21_finding3_card_paid_order_withdrawal_goes_back_to_the_card():
    """R21 (CRD Art 13(1)): a card payment is refunded to the card; the statement needs no
    IBAN (R17)."""
    order, _ = delivered_order([("KEU-001", 1)], prices=PRICES)
    # Replace the bank payment of the support helper with a card-paid twin order.
    card_order, _ = delivered_order([("KEU-002", 1)], prices=PRICES)
    Refund.objects.filter(order=card_order).delete()
    card_order.payments.all().delete()
    pay(card_order, "12.00", method=PaymentMethod.CARD, intent="pi_test_card")
    withdrawal = withdraw(card_order, [])
    refund = Refund.objects.get(pk=withdrawal.refund_id)
    assert refund.destination == RefundDestination.CARD
    assert refund.payment.stripe_payment_intent == "pi_test_card"
    assert refund.iban == ""
    # A bank-paid order without an IBAN in the statement: back to the payer's account.
    bank_withdrawal = withdraw(order, [])
    bank_refund = Refund.objects.get(pk=bank_withdrawal.refund_id)
    assert (bank_refund.destination, bank_refund.iban) == (RefundDestination.IBAN, LV_IBAN)


def test_r21_another_account_only_when_the_customer_names_one():
    """R21: the customer may name another account; the refund then goes there."""
    order, _ = delivered_order([("KEU-001", 1)], prices=PRICES)
    withdrawal = withdraw(order, [], iban="LV80BANK0000435195001", account_holder="Anna Bērziņa")
    refund = Refund.objects.get(pk=withdrawal.refund_id)
    assert (refund.destination, refund.iban) == (RefundDestination.IBAN, "LV80BANK0000435195001")


def test_r21_finding11_fee_not_refunded_when_inspection_rejects_a_line(clerk):
    """R21 with R22: the statement covered every line, so the fee was set aside; a sealed
    hygiene product comes back unsealed and is rejected: the contract stands for it, the
    fee stays charged."""
    order, _ = delivered_order([("KEU-001", 1), ("KEU-002", 1)], prices=PRICES)
    order.lines.filter(sku="KEU-002").update(sealed_hygiene=True)
    withdrawal = withdraw(order, [])
    assert withdrawal.refund_amount == Decimal("42.00")  # goods 40.00 + the 2.00 fee, for now
    withdrawals.record_goods_received(withdrawal_id=withdrawal.pk)
    lines = {wl.order_line.sku: wl for wl in withdrawal.lines.select_related("order_line")}
    withdrawals.inspect_withdrawal(
        withdrawal_id=withdrawal.pk,
        results={
            lines["KEU-001"].pk: LineInspection(InspectionOutcome.ACCEPTED),
            lines["KEU-002"].pk: LineInspection(
                InspectionOutcome.REJECTED, rejection_ground="hygiene_unsealed"
            ),
        },
        by=clerk,
    )
    refund = Refund.objects.get(pk=withdrawal.refund_id)
    assert refund.amount == Decimal("30.00")
    assert {a.target for a in refund.allocations.exclude(amount=0)} == {"line"}


def test_r16_finding8_partial_withdrawal_before_dispatch_ships_and_reserves_less():
    """R16 (CRD Art 9(3)): one of two units withdrawn before dispatch: that unit is
    refunded at once, its stock released, and only the other unit ships."""
    from orders.services.payments import record_payment as pay_in_full
    from shop.models import Product
    from tests.factories import place_test_order

    placed = place_test_order([("KEU-001", 2)], prices=PRICES)
    order = placed.order
    pay_in_full(
        order_id=order.pk,
        amount=order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_iban=LV_IBAN,
    )
    stock = Product.objects.get(sku="KEU-001").stock
    withdrawal = withdraw(order, [("KEU-001", 1)])
    line = order.lines.get()
    assert Refund.objects.get(pk=withdrawal.refund_id).amount == Decimal("30.00")
    assert Product.objects.get(sku="KEU-001").stock == stock + 1
    assert (line.status, line.quantity_to_ship) == ("ordered", 1)
    # Withdrawing from the rest cancels the order; the stock comes back once, not twice.
    withdraw(order, [("KEU-001", 1)], reason="The second one too.")
    assert Product.objects.get(sku="KEU-001").stock == stock + 2
    assert Order.objects.get(pk=order.pk).status == "cancelled"


def test_r21_a_refund_account_outside_sepa_is_refused_with_its_reason():
    """R17, R21: the customer may name another account, but only one SEPA can pay to."""
    from shop.errors import Refused

    order, _ = delivered_order([("KEU-001", 1)], prices=PRICES)
    with pytest.raises(Refused) as refused:
        withdraw(order, [], iban="SA0380000000608010167519", account_holder="Anna Bērziņa")
    assert refused.value.code == "iban_not_sepa"
    assert not Refund.objects.filter(order=order, reason=RefundReason.WITHDRAWAL).exists()
