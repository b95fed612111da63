"""legal.services.ledger: the per-order personal-data ledger (R26, R28)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from legal import holds, registry
from legal.models import LegalHold, PersonalDataRecord
from legal.services import consents as consent_services
from legal.services import holds as hold_services
from legal.services import ledger
from orders.services.lifecycle import cancel_order
from tests.legal.helpers import deliver, ledger_rows, pay, place

pytestmark = pytest.mark.django_db

PLACED = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def test_r26_a_placed_order_has_a_ledger_with_no_dates_while_it_is_performed(shop_ready):
    order = place(now=PLACED, consents={"marketing_email": True})
    rows = ledger_rows(order)
    assert set(rows) == {
        "identity",
        "contact",
        "delivery",
        "settlement",
        "communication",
        "consents",
    }
    assert {r.keep_until for r in rows.values()} == {None}
    assert rows["contact"].basis == "b"
    assert rows["settlement"].basis == "c"
    assert rows["consents"].basis == "a"
    assert ("orders.Order", "email") in registry.fields_of("contact")


def test_r26_without_consent_there_is_no_consents_row(shop_ready):
    order = place(now=PLACED)
    assert "consents" not in ledger_rows(order)


def test_r28_delivered_on_15_jan_2026_contact_data_kept_to_15_mar_2028(shop_ready):
    order = place(now=PLACED)
    order = pay(order, datetime(2026, 1, 13, 10, tzinfo=UTC))
    deliver(order, datetime(2026, 1, 14, 10, tzinfo=UTC), datetime(2026, 1, 15, 12, tzinfo=UTC))
    rows = ledger_rows(order)
    assert rows["contact"].keep_until == date(2028, 3, 15)
    assert rows["identity"].keep_until == date(2028, 3, 15)
    assert rows["delivery"].keep_until == date(2028, 3, 15)
    assert rows["contact"].basis == "f"  # performed: kept for legal claims now
    # R28: the invoice (and the payment) were issued in 2026: kept to 31 Dec 2031.
    assert rows["settlement"].keep_until == date(2031, 12, 31)
    assert rows["communication"].keep_until == date(2029, 1, 15)


def test_r28_a_cancelled_order_is_kept_3_years_after_cancellation(shop_ready):
    order = place(now=PLACED)
    cancel_order(order_id=order.pk, reason="customer", at=datetime(2026, 1, 20, 8, tzinfo=UTC))
    rows = ledger_rows(order)
    assert rows["contact"].keep_until == date(2029, 1, 20)
    assert rows["settlement"].keep_until == date(2031, 12, 31)


def test_r28_an_open_claim_postpones_through_a_registered_hold(shop_ready):
    """R28: the claims work plugs in "open claim on this order" with legal.holds.register."""
    order = place(now=PLACED)
    order = pay(order, datetime(2026, 1, 13, 10, tzinfo=UTC))
    deliver(order, datetime(2026, 1, 14, 10, tzinfo=UTC), datetime(2026, 1, 15, 12, tzinfo=UTC))
    claim = {"closed_at": None}

    def open_claims(order_ids):
        if order_ids is None or order.pk in order_ids:
            yield holds.Hold(
                order_id=order.pk,
                reason="conformity claim #1",
                opened_at=datetime(2027, 6, 1, tzinfo=UTC),
                closed_at=claim["closed_at"],
            )

    holds.register(open_claims)
    try:
        ledger.recompute_ledger(order_ids=[order.pk])
        rows = ledger_rows(order)
        assert rows["contact"].keep_until is None
        assert rows["contact"].hold_note == "conformity claim #1"
        claim["closed_at"] = datetime(2027, 9, 30, 12, tzinfo=UTC)
        ledger.recompute_ledger(order_ids=[order.pk])
        rows = ledger_rows(order)
        assert rows["contact"].keep_until == date(2030, 9, 30)
        assert rows["settlement"].keep_until == date(2031, 12, 31)
    finally:
        holds.unregister(open_claims)


def test_r28_a_hold_placed_by_staff_postpones_until_3_years_after_it_closes(shop_ready):
    order = place(now=PLACED)
    cancel_order(order_id=order.pk, reason="customer", at=datetime(2026, 1, 20, tzinfo=UTC))
    hold = hold_services.place_hold(order_id=order.pk, reason="dispute", note="PTAC case")
    assert ledger_rows(order)["contact"].keep_until is None
    with time_machine.travel(datetime(2028, 2, 1, 12, tzinfo=UTC), tick=False):
        hold_services.release_hold(hold_id=hold.pk)
    assert LegalHold.objects.get().closed_at is not None
    assert ledger_rows(order)["contact"].keep_until == date(2031, 2, 1)


def test_r28_consent_withdrawn_dates_the_consents_row(shop_ready):
    order = place(now=PLACED, consents={"marketing_email": True})
    with time_machine.travel(datetime(2026, 3, 2, 10, tzinfo=UTC), tick=False):
        consent_services.withdraw_consents(email="anna@example.lv", purposes=["marketing_email"])
    assert ledger_rows(order)["consents"].keep_until == date(2026, 3, 2)


def test_r26_recompute_is_idempotent_and_costs_the_same_for_many_orders(shop_ready):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    orders = [place(now=PLACED, email=f"p{i}@example.lv") for i in range(3)]
    assert ledger.recompute_ledger(order_ids=[o.pk for o in orders]) == 0
    counts = []
    for some in (orders[:1], orders):
        PersonalDataRecord.objects.filter(order__in=some, category="contact").delete()
        with CaptureQueriesContext(connection) as queries:
            assert ledger.recompute_ledger(order_ids=[o.pk for o in some]) == len(some)
        counts.append(len(queries))
    assert counts[0] == counts[1]
