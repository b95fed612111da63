"""orders.services.refunds: money out never exceeds money in (R11, R21, T4.3)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from delivery.models import DeliveryTariff
from orders.models import Order, PaymentMethod, Refund, RefundReason, RefundStatus
from orders.services.payments import record_payment
from orders.services.refunds import (
    approve_refunds,
    create_refund,
    fail_refunds,
    flag_overdue_refunds,
    refundable_balance,
    settle_refunds,
    update_refund_account,
)
from orders.services.sepa import export_sepa_refunds
from shop.errors import InvalidInput, Refused
from shop.models import VatRate
from shop.selectors import today_in_riga
from tests.conftest import requires_postgresql
from tests.factories import place_test_order

PAYER_IBAN = "LV80BANK0000435195001"


def paid_order(total: str = "20.00", *, paid: str | None = None) -> Order:
    """An order of `total` (goods + EUR 2.00 delivery fee), paid by bank transfer."""
    goods = Decimal(total) - Decimal("2.00")
    order = place_test_order([("KEU-001", 1)], prices={"KEU-001": goods}).order
    assert order.total == Decimal(total)
    record_payment(
        order_id=order.pk,
        amount=Decimal(paid or total),
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_name="Anna Bērziņa",
        payer_iban=PAYER_IBAN,
    )
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def approver(db):
    return User.objects.create_user("approver", is_staff=True)


@pytest.mark.django_db
def test_r21_refunds_never_exceed_what_was_paid():
    order = paid_order("20.00")
    create_refund(order_id=order.pk, amount=Decimal("15.00"), reason=RefundReason.STAFF)

    with pytest.raises(Refused) as refused:
        create_refund(order_id=order.pk, amount=Decimal("5.01"), reason=RefundReason.STAFF)
    assert refused.value.code == "refund_exceeds_paid"
    assert refused.value.facts["paid"] == "20.00"
    assert refused.value.facts["available"] == "5.00"

    create_refund(order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.STAFF)
    with pytest.raises(Refused) as refused:
        create_refund(order_id=order.pk, amount=Decimal("0.01"), reason=RefundReason.STAFF)
    assert refused.value.code == "refund_exceeds_paid"
    assert Refund.objects.filter(order=order).committed_total() == Decimal("20.00")
    assert refundable_balance(order) == Decimal("0.00")


@pytest.mark.django_db
def test_nothing_is_refunded_on_an_order_nothing_was_paid_for():
    order = place_test_order().order
    with pytest.raises(Refused) as refused:
        create_refund(order_id=order.pk, amount=Decimal("1.00"), reason=RefundReason.STAFF)
    assert refused.value.code == "refund_exceeds_paid"
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_a_refund_must_be_positive():
    order = paid_order()
    with pytest.raises(InvalidInput):
        create_refund(order_id=order.pk, amount=Decimal("0.00"), reason=RefundReason.STAFF)


@pytest.mark.django_db
def test_a_failed_refund_frees_its_amount(approver):
    order = paid_order("20.00")
    refund = create_refund(order_id=order.pk, amount=Decimal("20.00"), reason=RefundReason.STAFF)
    approve_refunds(refund_ids=[refund.pk], by=approver)
    export_sepa_refunds(by=approver)
    with pytest.raises(Refused):
        create_refund(order_id=order.pk, amount=Decimal("1.00"), reason=RefundReason.STAFF)

    assert fail_refunds(refund_ids=[refund.pk], reason="Account closed") == 1

    refund = Refund.objects.get(pk=refund.pk)
    assert refund.status == RefundStatus.FAILED
    assert refund.failure_reason == "Account closed"
    assert refundable_balance(order) == Decimal("20.00")
    again = create_refund(
        order_id=order.pk,
        amount=Decimal("20.00"),
        reason=RefundReason.STAFF,
        iban="LV97 HABA 0012 3456 7891 0",
    )
    assert again.iban == "LV97HABA0012345678910"


@pytest.mark.django_db
def test_t4_3_overpayment_goes_back_to_the_account_it_came_from():
    order = paid_order("20.00", paid="25.00")
    refund = Refund.objects.get(order=order)
    assert refund.reason == RefundReason.OVERPAYMENT
    assert refund.amount == Decimal("5.00")
    assert refund.iban == PAYER_IBAN
    assert refund.account_holder == "Anna Bērziņa"
    assert refund.status == RefundStatus.READY
    assert refund.due_date == today_in_riga() + timedelta(days=14)


@pytest.mark.django_db
def test_approval_skips_refunds_not_ready_or_without_an_iban(approver):
    order = paid_order("20.00")
    ready = create_refund(order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.STAFF)
    held = create_refund(
        order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.WITHDRAWAL, hold=True
    )
    no_iban = create_refund(order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.STAFF)
    Refund.objects.filter(pk=no_iban.pk).update(iban="")  # e.g. an erased account

    approved = approve_refunds(refund_ids=[ready.pk, held.pk, no_iban.pk], by=approver)

    assert [r.pk for r in approved] == [ready.pk]
    statuses = dict(Refund.objects.values_list("pk", "status"))
    assert statuses == {
        ready.pk: RefundStatus.APPROVED,
        held.pk: RefundStatus.PENDING,
        no_iban.pk: RefundStatus.READY,
    }
    assert Refund.objects.get(pk=ready.pk).approved_by == approver


@pytest.mark.django_db
def test_settle_only_sent_refunds(approver):
    order = paid_order("20.00")
    refund = create_refund(order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.STAFF)
    assert settle_refunds(refund_ids=[refund.pk]) == 0
    approve_refunds(refund_ids=[refund.pk], by=approver)
    export_sepa_refunds()
    assert settle_refunds(refund_ids=[refund.pk]) == 1
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SETTLED


@pytest.mark.django_db
def test_staff_correct_the_account_only_before_approval(approver):
    order = paid_order("20.00")
    refund = create_refund(order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.STAFF)

    with pytest.raises(InvalidInput):
        update_refund_account(refund_id=refund.pk, iban="LV80BANK0000435195002", account_holder="A")

    updated = update_refund_account(
        refund_id=refund.pk, iban="de89 3704 0044 0532 0130 00", account_holder=" Jānis Ozols "
    )
    assert (updated.iban, updated.account_holder) == ("DE89370400440532013000", "Jānis Ozols")

    approve_refunds(refund_ids=[refund.pk], by=approver)
    with pytest.raises(Refused) as refused:
        update_refund_account(refund_id=refund.pk, iban=PAYER_IBAN, account_holder="Anna")
    assert refused.value.code == "refund_account_locked"
    assert Refund.objects.get(pk=refund.pk).iban == "DE89370400440532013000"


@pytest.mark.django_db
def test_r21_overdue_refunds_are_flagged_once():
    order = paid_order("20.00")
    refund = create_refund(order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.STAFF)
    assert not refund.is_overdue
    assert flag_overdue_refunds(today=today_in_riga()) == 0

    with time_machine.travel(timezone.now() + timedelta(days=16), tick=False):
        refund = Refund.objects.get(pk=refund.pk)
        assert refund.is_overdue
        assert flag_overdue_refunds(today=today_in_riga()) == 1
        assert flag_overdue_refunds(today=today_in_riga()) == 0
    assert Refund.objects.get(pk=refund.pk).overdue_flagged_at is not None


def ensure_seed_data() -> None:
    """The rows the data migrations create (default tariff, VAT rate): a transactional
    test may run after another one whose flush removed them."""
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        )
    VatRate.objects.get_or_create(
        category="standard", effective_from=date(2012, 7, 1), defaults={"rate": Decimal("21.00")}
    )


@requires_postgresql
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r21_parallel_refunds_never_exceed_what_was_paid():
    """50 concurrent refunds of EUR 1.00 on an order paid EUR 20.00: exactly 20 succeed.

    `create_refund` locks the order row, so the check "refunded + amount <= paid" and the
    insert are one step for every caller."""
    ensure_seed_data()
    order = paid_order("20.00")
    attempts = 50
    barrier = threading.Barrier(attempts)
    max_seen = []

    def refund_one_euro() -> str:
        try:
            barrier.wait(timeout=30)
            create_refund(order_id=order.pk, amount=Decimal("1.00"), reason=RefundReason.STAFF)
            max_seen.append(Refund.objects.filter(order_id=order.pk).committed_total())
            return "created"
        except Refused as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        results = list(pool.map(lambda _i: refund_one_euro(), range(attempts)))

    assert results.count("created") == 20
    assert results.count("refund_exceeds_paid") == 30
    assert Refund.objects.filter(order=order).count() == 20
    assert Refund.objects.filter(order=order).committed_total() == Decimal("20.00")
    assert max(max_seen) <= Decimal("20.00")
