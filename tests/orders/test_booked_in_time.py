"""R10, R12 (issue "Where flows meet on one order", finding 4): payments are dated by the
bank's booking day, not by when their statement was imported. The deadline jobs wait for
the next working day's statements; a payment booked in time that still arrives after a
cancellation reinstates the order, or comes back in full, fee included."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from orders.models import CancelReason, Order, OrderStatus, PaymentMethod, Refund
from orders.rules import booked_in_time, statement_grace_cutoff
from orders.services.bank import received_at
from orders.services.payments import record_payment
from shop.calendar import LatvianCalendar, end_of_day
from shop.deadlines import run_all
from shop.models import Product
from tests.factories import place_test_order

RIGA = ZoneInfo("Europe/Riga")
PAYER = "LV97HABA0012345678910"


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def pay_booked(order: Order, booking_day: date, amount: Decimal | None = None):
    return record_payment(
        order_id=order.pk,
        amount=amount if amount is not None else order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=received_at(booking_day),
        payer_name="Anna Bērziņa",
        payer_iban=PAYER,
    )


@pytest.mark.parametrize(
    ("deadline_day", "first_cancel_moment"),
    [
        # Thu: statements of Fri come in; cancellation once Fri has ended.
        (date(2026, 12, 10), end_of_day(date(2026, 12, 11))),
        # Fri: the next working day is Mon.
        (date(2026, 12, 11), end_of_day(date(2026, 12, 14))),
        # Wed 23 Dec 2026: 24-26 Dec holidays, 27 Sun: Mon 28 Dec.
        (date(2026, 12, 23), end_of_day(date(2026, 12, 28))),
    ],
)
def test_r10_r12_grace_waits_for_the_next_working_days_statements(
    deadline_day, first_cancel_moment
):
    """R10, R12: a deadline may be acted on only after the end of the next working day
    (SHOP_STATEMENT_GRACE_WORKING_DAYS = 1), across weekends and Latvian holidays."""
    cal = LatvianCalendar()
    deadline = end_of_day(deadline_day)
    just_before = first_cancel_moment.replace(microsecond=0)
    assert statement_grace_cutoff(just_before, cal, 1) < deadline
    from datetime import timedelta

    assert statement_grace_cutoff(first_cancel_moment + timedelta(microseconds=1), cal, 1) >= (
        deadline
    )


def test_r10_booked_in_time_is_by_the_riga_booking_day():
    deadline = end_of_day(date(2026, 12, 10))
    assert booked_in_time(received_at(date(2026, 12, 10)), deadline)
    assert not booked_in_time(received_at(date(2026, 12, 11)), deadline)


@pytest.mark.django_db
def test_r12_finding4_payment_booked_on_the_contact_deadline_day_imported_next_morning():
    """R12: booked on the last contact day (Thu 10 Dec), its statement imported on Fri
    morning after the nightly job: the order is paid, not cancelled (it used to keep EUR 2
    as `no_contact`)."""
    placed = place_test_order(now=riga(2026, 12, 7, 10, 0))
    order = placed.order
    assert order.contact_deadline == end_of_day(date(2026, 12, 10))
    with time_machine.travel(riga(2026, 12, 11, 0, 30), tick=False):
        assert run_all()["no_contact"] == 0
    with time_machine.travel(riga(2026, 12, 11, 9, 0), tick=False):
        pay_booked(order, date(2026, 12, 10))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert not Refund.objects.filter(order=order).exists()
    # With no payment at all, the order goes once Friday's statements are in.
    other = place_test_order([("KEU-002", 1)], now=riga(2026, 12, 7, 10, 0)).order
    with time_machine.travel(riga(2026, 12, 12, 0, 30), tick=False):
        assert run_all()["no_contact"] == 1
    other.refresh_from_db()
    assert (other.status, other.cancel_reason) == (OrderStatus.CANCELLED, CancelReason.NO_CONTACT)


@pytest.mark.django_db
def test_r10_finding4_payment_booked_on_the_due_date_arriving_after_cancellation_reinstates():
    """R10: the statement came three days late, after the cancellation for non-payment; the
    payment was booked on the due date and the goods are still in stock: the order is
    reinstated and paid, its stock reserved again, nothing refunded."""
    placed = place_test_order([("KEU-001", 2)], now=riga(2026, 12, 7, 10, 0))
    order = placed.order
    record_payment(  # a partial payment: contact established, the rest awaited
        order_id=order.pk,
        amount=Decimal("1.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_at=received_at(date(2026, 12, 8)),
        payer_iban=PAYER,
    )
    due_day = order.payment_due_at.astimezone(RIGA).date()
    stock_before = Product.objects.get(sku="KEU-001").stock
    with time_machine.travel(riga(2026, 12, 20, 1, 0), tick=False):
        assert run_all()["unpaid"] == 1
    assert Product.objects.get(sku="KEU-001").stock == stock_before + 2
    with time_machine.travel(riga(2026, 12, 21, 9, 0), tick=False):
        pay_booked(order, due_day, amount=order.total - Decimal("1.00"))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.reinstated_at is not None and order.cancel_reason == ""
    assert Product.objects.get(sku="KEU-001").stock == stock_before
    # The refund of the partial payment made at the cancellation is dropped, not paid.
    assert not Refund.objects.filter(order=order).committed().exists()


@pytest.mark.django_db
def test_r12_finding4_in_time_payment_after_cancellation_with_goods_gone_refunds_the_fee_too():
    """R12 (T3.4): the shop keeps the fee only when the customer really was late. Booked in
    time, imported after the cancellation, the goods sold meanwhile: everything back."""
    placed = place_test_order([("KEU-001", 1)], now=riga(2026, 12, 7, 10, 0))
    order = placed.order
    with time_machine.travel(riga(2026, 12, 15, 1, 0), tick=False):
        assert run_all()["no_contact"] == 1
    Product.objects.filter(sku="KEU-001").update(stock=0)
    with time_machine.travel(riga(2026, 12, 15, 9, 0), tick=False):
        pay_booked(order, date(2026, 12, 10))
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    refund = Refund.objects.get(order=order)
    assert refund.amount == order.total  # the 2.00 fee included
    assert refund.iban == PAYER


@pytest.mark.django_db
def test_r12_late_payment_after_no_contact_still_keeps_the_fee():
    """R12 (T3.4): booked after the contact deadline, the cancellation stands and the fee
    is kept."""
    placed = place_test_order([("KEU-001", 1)], now=riga(2026, 12, 7, 10, 0))
    order = placed.order
    with time_machine.travel(riga(2026, 12, 15, 1, 0), tick=False):
        assert run_all()["no_contact"] == 1
    with time_machine.travel(riga(2026, 12, 15, 9, 0), tick=False):
        pay_booked(order, date(2026, 12, 14))
    refund = Refund.objects.get(order=order)
    assert refund.amount == order.total - order.delivery_fee
