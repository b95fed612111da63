"""Money in (R10, R11, R12): record a payment against an order, under the order's lock.

- Paid in full: the order is paid (and contact is established, R12).
- Paid in part: recorded; contact established; the order waits for the rest.
- More than the total: the excess is refunded to the account it came from (T4.3).
- Money for a cancelled order is refunded: in full (R10), or without the delivery fee
  when the order was cancelled for lack of contact or a failed delivery (T3.4, T5.4).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from legal.services import ledger
from orders import emails, rules
from orders.calculations import EXCESS
from orders.models import (
    AWAITING_PAYMENT,
    BankEntry,
    CancelReason,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Refund,
    RefundReason,
    RefundStatus,
)
from orders.services import account, refunds
from orders.services.locks import lock_order, lock_products_by_id
from shop.calendar import riga_date
from shop.models import Product
from shop.money import ZERO, money_sum, to_money

FEE_RETAINED_FOR = {CancelReason.NO_CONTACT, CancelReason.DELIVERY_FAILED}

LATE_PAYMENT_REASON = {
    CancelReason.NO_CONTACT: RefundReason.NO_CONTACT,
    CancelReason.UNPAID: RefundReason.UNPAID_LATE_PAYMENT,
    CancelReason.CUSTOMER: RefundReason.CUSTOMER_CANCEL,
    CancelReason.UNAVAILABLE: RefundReason.UNAVAILABLE,
    CancelReason.DELIVERY_FAILED: RefundReason.DELIVERY_FAILED,
    CancelReason.STAFF: RefundReason.STAFF,
}


def retained_on_cancellation(order: Order) -> Decimal:
    """What the shop keeps of a cancelled order: the delivery fee in T3.4 and T5.4 cases."""
    return order.delivery_fee if order.cancel_reason in FEE_RETAINED_FOR else ZERO


def record_payment(
    *,
    order_id: int,
    amount: Decimal,
    method: str,
    received_at: datetime,
    bank_entry: BankEntry | None = None,
    payer_name: str = "",
    payer_iban: str = "",
    stripe_payment_intent: str | None = None,
) -> Payment:
    amount = to_money(amount)
    with transaction.atomic():
        order = lock_order(order_id)
        payment = Payment.objects.create(
            order=order,
            amount=amount,
            method=method,
            received_at=received_at,
            bank_entry=bank_entry,
            payer_name=payer_name[:140],
            payer_iban=payer_iban,
            stripe_payment_intent=stripe_payment_intent,
        )
        settle_balance(order=order, at=received_at, payment=payment)
        order.save()
        emails.payment_received(order=order, payment=payment)
    return payment


def settle_balance(*, order: Order, at: datetime, payment: Payment | None = None) -> None:
    """Bring the order's state and refunds in line with its money account (R32; the
    order is locked by the caller).

    A cancelled order gives back everything it holds, less the fee the shop keeps in the
    T3.4 and T5.4 cases. A running order gives back the money of lines cancelled since
    it was paid (R13) and any overpayment (T4.3): received - what the order charges -
    overpayment refunds already made.
    """
    due_day = riga_date(at) + timedelta(days=refunds.REFUND_DAYS)

    # R10, R12: a payment booked in time may undo a cancellation; the money of a
    # reinstated order is then settled as for any running order below.
    if order.status == OrderStatus.CANCELLED and not _reinstated(order, payment=payment, at=at):
        money = account.money_account(order)
        # A payment booked in time whose goods are gone: everything back, fee included.
        keep_fee = order.cancel_reason in FEE_RETAINED_FOR and not _in_time(order, payment)
        owed = account.everything_refundable(money, keep_fee=keep_fee)
        if owed:
            refunds.create_refund(
                order_id=order.pk,
                take=owed,
                reason=LATE_PAYMENT_REASON.get(order.cancel_reason, RefundReason.STAFF),
                due_date=due_day,
                payment=payment,
            )
        return

    if order.status in AWAITING_PAYMENT:
        money = account.money_account(order)
        if money.received - money.refunded_total >= order.total:
            order.mark_paid(at=at)
        elif order.status == OrderStatus.PLACED:
            order.confirm(at=at)  # R12: a matching payment establishes contact

    money = account.money_account(order)
    cancelled_lines = set(
        order.lines.filter(status=LineStatus.CANCELLED).values_list("pk", flat=True)
    )
    owed_for_lines = {
        line_id: money.refundable(line_id)
        for line_id in cancelled_lines
        if money.refundable(line_id) > 0
    }
    if owed_for_lines:
        refunds.create_refund(
            order_id=order.pk,
            take=owed_for_lines,
            reason=RefundReason.UNAVAILABLE,
            due_date=due_day,
            payment=payment,
        )
    if money.overpayment > 0:
        refunds.create_refund(
            order_id=order.pk,
            take={EXCESS: money.overpayment},
            reason=RefundReason.OVERPAYMENT,
            due_date=due_day,
            payment=payment,
        )


def _in_time(order: Order, payment: Payment | None) -> bool:
    """R10, R12: did this payment (dated by its booking day) come in time to prevent the
    cancellation? For lack of contact: booked by the contact deadline. For non-payment:
    with the other payments booked by the due date, it pays the order in full."""
    if payment is None:
        return False
    if order.cancel_reason == CancelReason.NO_CONTACT:
        return rules.booked_in_time(payment.received_at, order.contact_deadline)
    if order.cancel_reason == CancelReason.UNPAID:
        in_time = [
            p.amount
            for p in order.payments.all()
            if rules.booked_in_time(p.received_at, order.payment_due_at)
        ]
        return rules.booked_in_time(payment.received_at, order.payment_due_at) and (
            money_sum(in_time) >= order.total
        )
    return False


def _reinstated(order: Order, *, payment: Payment | None, at: datetime) -> bool:
    """R10, R12: a payment booked in time arrived after the order was cancelled for lack of
    contact or payment: the order runs again when all its goods are still in stock (they
    are reserved again); otherwise it stays cancelled and the money comes back in full.
    Staff see reinstated orders in the admin (filter "reinstated")."""
    if not _in_time(order, payment):
        return False
    lines = list(
        OrderLine.objects.filter(
            order=order, status=LineStatus.CANCELLED, substitution_offered_at__isnull=True
        ).order_by("pk")
    )
    products = lock_products_by_id(line.product_id for line in lines)
    wanted: dict[int, int] = {}
    for line in lines:
        wanted[line.product_id] = (
            wanted.get(line.product_id, 0) + line.quantity - line.released_quantity
        )
    if any(products[pid].stock < quantity for pid, quantity in wanted.items()):
        return False
    for pid, quantity in wanted.items():
        products[pid].stock -= quantity
    Product.objects.bulk_update(list(products.values()), ["stock"])
    for line in lines:
        line.reinstate()
        line.save()
    order.reinstate(at=at)
    order.save()
    # The cancellation's refunds not yet approved are dropped: the money pays the order.
    for refund in (
        Refund.objects.select_for_update()
        .filter(order=order, status__in=[RefundStatus.PENDING, RefundStatus.READY])
        .order_by("pk")
    ):
        refund.fail(reason="Order reinstated: a payment booked in time (R10, R12).", at=at)
        refund.save()
    ledger.recompute_ledger(order_ids=[order.pk])  # R28: retention of a running order again
    return True
