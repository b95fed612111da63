"""legal.services.retention and `enforce_retention` (R28, R29)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command

from legal.models import Consent, ErasureRecord, PersonalDataRecord
from legal.registry import MARKER
from legal.services import consents as consent_services
from legal.services import holds as hold_services
from legal.services.retention import enforce_retention
from orders.models import BankEntry, BankStatement, Invoice, Order, OrderLine, Payment, Refund
from orders.services.refunds import create_refund
from shop.celery import app as celery_app
from shop.models import OutboxMessage
from tests.legal.helpers import deliver, ledger_rows, pay, place, settle_refunds

pytestmark = pytest.mark.django_db

PLACED = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
DELIVERED = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def at(year, month, day, hour=12):
    return datetime(year, month, day, hour, tzinfo=UTC)


def delivered_order(email="anna@example.lv", **kwargs):
    order = place(now=PLACED, email=email, **kwargs)
    order = pay(order, at(2026, 1, 13))
    create_refund(
        order_id=order.pk,
        amount=Decimal("1.00"),
        reason="staff",
        iban="LV80BANK0000435195001",
        account_holder="Anna Bērziņa",
    )
    settle_refunds(order, at(2026, 1, 13, 15))  # R28: an unsettled refund would hold
    return deliver(order, at(2026, 1, 14), DELIVERED)


def sweep(when: datetime):
    with time_machine.travel(when, tick=False):
        return enforce_retention(batch_size=3)


def test_r29_nothing_is_erased_on_the_last_day_kept(shop_ready):
    order = delivered_order()
    sweep(at(2028, 3, 15, 20))  # 15 Mar 2028, 22:00 in Riga: still the last day
    order.refresh_from_db()
    assert order.email == "anna@example.lv"
    assert order.first_name == "Anna"
    assert not ErasureRecord.objects.exists()


def test_r29_contact_data_erased_the_day_after_keeping_the_facts(shop_ready):
    order = delivered_order()
    line = OrderLine.objects.get(order=order)
    report = sweep(at(2028, 3, 16, 3))
    order.refresh_from_db()
    assert (order.first_name, order.last_name, order.email, order.phone) == (MARKER,) * 4
    assert (order.street, order.city, order.parcel_machine_name) == (MARKER, MARKER, "")
    assert order.postal_code == "LV-10xx"  # the postcode area stays
    # Non-personal facts stay (IP11): amounts, SKUs, dates.
    assert order.total == Decimal("12.00") and order.goods_total == Decimal("10.00")
    assert order.delivered_at == DELIVERED and order.placed_at == PLACED
    assert OrderLine.objects.get(pk=line.pk).sku == line.sku
    # Accounting records are kept to 31 Dec 2031.
    assert Invoice.objects.get(order=order).buyer_name == "Anna Bērziņa"
    assert Payment.objects.get(order=order).payer_iban == "LV80BANK0000435195001"
    # The django-simple-history copies go too.
    history = order.history.all()
    assert history.count() >= 3
    assert set(history.values_list("email", flat=True)) == {MARKER}
    assert set(history.values_list("first_name", flat=True)) == {MARKER}
    assert set(history.values_list("postal_code", flat=True)) == {"LV-10xx"}
    # One erasure record per category, without the erased values.
    records = ErasureRecord.objects.filter(order=order)
    assert sorted(records.values_list("category", flat=True)) == ["contact", "delivery", "identity"]
    assert "anna" not in str(list(records.values("fields", "note"))).lower()
    assert report.erased == {"contact": 1, "delivery": 1, "identity": 1}
    rows = ledger_rows(order)
    assert rows["contact"].erased_at is not None
    assert rows["settlement"].erased_at is None


def test_r29_accounting_records_erased_after_31_dec_2031_with_their_history(shop_ready):
    order = delivered_order()
    sweep(at(2031, 12, 31, 20))
    assert Invoice.objects.get(order=order).buyer_name == "Anna Bērziņa"
    sweep(at(2032, 1, 1, 3))
    invoice = Invoice.objects.get(order=order)
    assert (invoice.buyer_name, invoice.buyer_address) == (MARKER, MARKER)
    assert invoice.total == Decimal("12.00") and invoice.number.startswith("KEU-2026-")
    payment = Payment.objects.get(order=order)
    assert (payment.payer_name, payment.payer_iban) == (MARKER, MARKER)
    assert payment.amount == Decimal("12.00")
    refund = Refund.objects.get(order=order)
    assert (refund.iban, refund.account_holder) == (MARKER, MARKER)
    for model in (Invoice, Payment, Refund):
        for row in model.history.filter(order_id=order.pk).values():
            for name in ("buyer_name", "payer_iban", "iban", "account_holder"):
                if name in row:
                    assert row[name] in ("", MARKER)


def test_r29_a_second_sweep_changes_nothing(shop_ready):
    delivered_order()
    sweep(at(2032, 6, 1))
    before = (
        ErasureRecord.objects.count(),
        list(Order.objects.values()),
        list(Invoice.objects.values()),
        list(Payment.objects.values()),
    )
    report = sweep(at(2032, 6, 2))
    assert report.total == 0
    after = (
        ErasureRecord.objects.count(),
        list(Order.objects.values()),
        list(Invoice.objects.values()),
        list(Payment.objects.values()),
    )
    assert before == after


def test_r28_a_late_refund_postpones_the_accounting_records(shop_ready):
    """The sweep recomputes before it erases: a refund sent in 2027 keeps 2026's invoice
    to the end of 2032, even if nobody recomputed the ledger when it was made."""
    order = delivered_order()
    with time_machine.travel(at(2027, 2, 1), tick=False):
        create_refund(
            order_id=order.pk,
            amount=Decimal("1.00"),
            reason="staff",
            iban="LV80BANK0000435195001",
            account_holder="Anna Bērziņa",
        )
        settle_refunds(order, at(2027, 2, 1))  # R28: an unsettled refund would hold
    assert ledger_rows(order)["settlement"].keep_until == date(2031, 12, 31)
    sweep(at(2032, 1, 2))
    assert Invoice.objects.get(order=order).buyer_name == "Anna Bērziņa"
    assert ledger_rows(order)["settlement"].keep_until == date(2032, 12, 31)


def test_r28_an_open_hold_postpones_the_sweep_until_3_years_after_it_closes(shop_ready):
    order = delivered_order()
    hold = hold_services.place_hold(order_id=order.pk, reason="dispute", note="court case")
    sweep(at(2028, 6, 1))
    order.refresh_from_db()
    assert order.email == "anna@example.lv"
    with time_machine.travel(at(2028, 6, 2), tick=False):
        hold_services.release_hold(hold_id=hold.pk)
    sweep(at(2031, 6, 2))
    order.refresh_from_db()
    assert order.email == "anna@example.lv"
    sweep(at(2031, 6, 3, 3))
    order.refresh_from_db()
    assert order.email == MARKER


def test_r28_consent_withdrawn_marketing_data_gone_within_3_working_days(shop_ready):
    order = place(now=PLACED, consents={"marketing_email": True})
    sweep(at(2026, 4, 1))
    consent = Consent.objects.get(order=order)
    assert consent.email == "anna@example.lv"  # standing consent: kept
    # Thursday 30 Apr 2026; 1 and 4 May are holidays: 3 working days end on 7 May.
    with time_machine.travel(at(2026, 4, 30, 9), tick=False):
        consent_services.withdraw_consents(email="anna@example.lv", purposes=["marketing_email"])
    assert not consent_services.marketing_allowed("anna@example.lv", "marketing_email")
    sweep(at(2026, 4, 30, 20))
    assert Consent.objects.get(pk=consent.pk).email == "anna@example.lv"
    sweep(at(2026, 5, 7, 20))  # the nightly job ran at least once in 3 working days
    consent.refresh_from_db()
    assert (consent.email, consent.user_id, consent.order_id) == (MARKER, None, None)
    assert consent.erased_at is not None
    assert consent.purpose == "marketing_email" and consent.withdrawn_at is not None
    assert ErasureRecord.objects.filter(category="consents", reason="consent_withdrawn").exists()


def test_r29_outbox_emails_erased_3_years_after_they_were_sent(
    shop_ready, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(now=PLACED)
    message = OutboxMessage.objects.get(dedupe_key=f"order-placed-{order.pk}")
    OutboxMessage.objects.filter(pk=message.pk).update(created_at=PLACED, delivered_at=PLACED)
    assert "anna@example.lv" in message.payload["to"]
    sweep(at(2029, 1, 12, 20))
    message.refresh_from_db()
    assert message.payload["to"] == ["anna@example.lv"]
    sweep(at(2029, 1, 13, 3))
    message.refresh_from_db()
    assert message.payload == {"erased": MARKER, "template": "order_placed"}
    assert ErasureRecord.objects.filter(category="communication").exists()


def test_r28_emails_to_a_person_under_legal_hold_wait(
    shop_ready, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(now=PLACED)
    OutboxMessage.objects.update(created_at=PLACED, delivered_at=PLACED)
    hold = hold_services.place_hold(order_id=order.pk, reason="authority")
    sweep(at(2029, 6, 1))
    assert OutboxMessage.objects.filter(payload__to__0="anna@example.lv").exists()
    with time_machine.travel(at(2029, 6, 2), tick=False):
        hold_services.release_hold(hold_id=hold.pk)
    sweep(at(2029, 6, 3))
    assert not OutboxMessage.objects.filter(payload__to__0="anna@example.lv").exists()


def test_r29_unmatched_bank_entries_go_5_years_after_their_booking_year(shop_ready):
    statement = BankStatement.objects.create(file_name="s.xml", sha256="0" * 64)
    entry = BankEntry.objects.create(
        statement=statement,
        entry_key="E1",
        amount=Decimal("5.00"),
        booking_date=date(2026, 3, 1),
        debtor_name="Jānis Ozols",
        debtor_iban="LV80BANK0000435195001",
        remittance_info="par ko",
    )
    sweep(at(2031, 12, 31, 20))
    entry.refresh_from_db()
    assert entry.debtor_name == "Jānis Ozols"
    sweep(at(2032, 1, 1, 3))
    entry.refresh_from_db()
    assert (entry.debtor_name, entry.debtor_iban, entry.remittance_info) == (MARKER,) * 3
    assert entry.amount == Decimal("5.00")


def test_r29_orders_without_a_ledger_get_one_and_undated_rows_heal(shop_ready):
    order = delivered_order()
    PersonalDataRecord.objects.filter(order=order).delete()
    report = sweep(at(2026, 2, 1))
    assert report.ledgers_created >= 5
    # A delivery the ledger never heard of: the sweep recomputes undated rows.
    PersonalDataRecord.objects.filter(order=order).update(keep_until=None)
    report = sweep(at(2026, 2, 2))
    assert report.ledgers_refreshed >= 1
    assert ledger_rows(order)["contact"].keep_until == date(2028, 3, 15)


def test_r29_the_command_shows_progress_and_reports(shop_ready):
    delivered_order()
    delivered_order(email="berta@example.lv", first_name="Berta")
    out, err = io.StringIO(), io.StringIO()
    with time_machine.travel(at(2028, 4, 1), tick=False):
        call_command("enforce_retention", "--dry-run", stdout=out)
        assert "6 ledger row(s) past their date" in out.getvalue()
        call_command("enforce_retention", "--batch-size", "2", stdout=out, stderr=err)
    assert "ledger: [" in err.getvalue() and "100% 6/6" in err.getvalue()
    assert "erased contact: 2 order(s)" in out.getvalue()
    out = io.StringIO()
    with time_machine.travel(at(2028, 4, 2), tick=False):
        call_command("enforce_retention", "--no-progress", stdout=out)
    assert "nothing was past its date" in out.getvalue()


def test_r29_the_sweep_runs_every_night():
    job = celery_app.conf.beat_schedule["enforce-retention"]
    assert job["task"] == "legal.tasks.enforce_retention"
    assert job["schedule"].hour == {2}
