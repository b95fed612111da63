"""run_deadlines: R12 contact deadline, R10 invoice due date, overdue refunds (R21)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command

from orders.models import Order, OrderStatus, RefundReason
from orders.services.lifecycle import establish_contact
from orders.services.payments import record_payment
from orders.services.refunds import create_refund
from shop.calendar import RIGA
from shop.deadlines import run_all
from shop.models import Product
from tests.factories import place_test_order

pytestmark = pytest.mark.django_db


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def place_at(moment: datetime, **kwargs) -> Order:
    with time_machine.travel(moment, tick=False):
        return place_test_order(**kwargs).order


def run_at(moment: datetime) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return run_all()


def pay(order: Order, amount: str, at: datetime, iban: str = "LV80BANK0000435195001"):
    with time_machine.travel(at, tick=False):
        return record_payment(
            order_id=order.pk,
            amount=Decimal(amount),
            method="bank_transfer",
            received_at=at,
            payer_name="Anna Bērziņa",
            payer_iban=iban,
        )


@pytest.mark.parametrize(
    ("placed", "deadline_day", "grace_day"),
    [
        # Fri 13 Nov 2026: Mon 16, Tue 17, (Wed 18 holiday), Thu 19; statements of Fri 20.
        (riga(2026, 11, 13, 10, 0), riga(2026, 11, 19), riga(2026, 11, 20)),
        # Tue 22 Dec 2026: Wed 23, (24-27 off), Mon 28, Tue 29; statements of Wed 30.
        (riga(2026, 12, 22, 15, 30), riga(2026, 12, 29), riga(2026, 12, 30)),
    ],
)
def test_r12_cancelled_one_minute_after_the_statement_grace_not_before(
    placed, deadline_day, grace_day
):
    """R12 (T3.4): no contact by the end of the 3rd working day after placement: cancelled,
    once the next working day's bank statements could have shown a payment booked by then
    (SHOP_STATEMENT_GRACE_WORKING_DAYS = 1; the deadline shown does not move)."""
    order = place_at(placed)
    end = deadline_day.replace(hour=23, minute=59, second=59, microsecond=999999)
    assert order.contact_deadline == end
    grace_end = grace_day.replace(hour=23, minute=59, second=59, microsecond=999999)

    run_at(end + timedelta(minutes=1))
    run_at(grace_end - timedelta(minutes=1))
    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED

    report = run_at(grace_end + timedelta(minutes=1))
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == "no_contact"
    assert order.contact_deadline == end
    assert report["no_contact"] == 1
    assert Product.objects.get(sku="KEU-001").stock == 100  # R8: stock released
    assert run_at(grace_end + timedelta(minutes=2))["no_contact"] == 0  # idempotent


def test_r12_confirmed_order_is_not_cancelled_for_contact():
    order = place_at(riga(2026, 11, 13, 10, 0))
    with time_machine.travel(riga(2026, 11, 16, 9, 0), tick=False):
        establish_contact(order_id=order.pk)
    run_at(riga(2026, 11, 20, 0, 1))
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED


def test_r12_late_payment_refunded_minus_the_delivery_fee():
    """R12 (T3.4): money arriving after a no-contact cancellation comes back without the fee."""
    order = place_at(riga(2026, 11, 13, 10, 0), lines=[("KEU-001", 2)])  # 20.00 + 2.00 fee
    run_at(riga(2026, 11, 21, 0, 1))  # deadline Thu 19 Nov, Friday's statements in
    pay(order, "22.00", riga(2026, 11, 23, 12, 0))
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    refund = order.refunds.get()
    assert refund.amount == Decimal("20.00")
    assert refund.reason == RefundReason.NO_CONTACT
    assert refund.iban == "LV80BANK0000435195001"
    # A second late payment is refunded in full: the fee was kept once.
    pay(order, "5.00", riga(2026, 11, 24, 12, 0))
    assert sorted(r.amount for r in order.refunds.all()) == [Decimal("5.00"), Decimal("20.00")]


def test_r12_payment_establishes_contact():
    order = place_at(riga(2026, 11, 13, 10, 0), lines=[("KEU-001", 2)])
    pay(order, "5.00", riga(2026, 11, 16, 10, 0))  # partial
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    run_at(riga(2026, 11, 20, 0, 1))
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED


def test_r10_unpaid_at_the_end_of_the_due_date_is_cancelled_and_late_money_refunded_in_full():
    """R10: 5 working days after Fri 13 Nov 2026 is Mon 23 Nov (18 Nov is a holiday)."""
    order = place_at(riga(2026, 11, 13, 10, 0), lines=[("KEU-001", 2)])
    assert order.payment_due_at == riga(2026, 11, 23, 23, 59, 59, 999999)
    assert order.invoices.get().due_date.isoformat() == "2026-11-23"
    with time_machine.travel(riga(2026, 11, 16, 9, 0), tick=False):
        establish_contact(order_id=order.pk)
    pay(order, "10.00", riga(2026, 11, 17, 9, 0))  # partial

    run_at(riga(2026, 11, 24, 23, 58))  # Tuesday's statements may still bring a payment
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED

    run_at(riga(2026, 11, 25, 0, 1))
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "unpaid")
    assert Product.objects.get(sku="KEU-001").stock == 100
    # The partial payment comes back in full, and so does money arriving later.
    assert [r.amount for r in order.refunds.all()] == [Decimal("10.00")]
    pay(order, "12.00", riga(2026, 11, 25, 9, 0))  # booked after the due date
    refunds = sorted(order.refunds.values_list("amount", "reason"))
    assert refunds == [
        (Decimal("10.00"), "unpaid_late_payment"),
        (Decimal("12.00"), "unpaid_late_payment"),
    ]


def test_r21_overdue_refunds_are_flagged_once():
    order = place_at(riga(2026, 11, 13, 10, 0))
    pay(order, "12.00", riga(2026, 11, 13, 12, 0))
    with time_machine.travel(riga(2026, 11, 13, 12, 0), tick=False):
        refund = create_refund(
            order_id=order.pk,
            amount=Decimal("5.00"),
            reason="staff",
            due_date=riga(2026, 11, 27).date(),
        )
    assert run_at(riga(2026, 11, 27, 23, 0))["overdue_refunds"] == 0
    assert run_at(riga(2026, 11, 28, 0, 1))["overdue_refunds"] == 1
    refund.refresh_from_db()
    assert refund.overdue_flagged_at is not None
    assert run_at(riga(2026, 11, 28, 1, 0))["overdue_refunds"] == 0


def test_run_deadlines_command(capsys):
    call_command("run_deadlines")
    out = capsys.readouterr().out
    assert "no_contact: 0" in out and "unpaid: 0" in out
