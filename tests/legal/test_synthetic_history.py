"""R28, R29 over a synthetic history of 10,000 orders aged through the years: after each
sweep no personal field is left past its date and nothing is erased early; a second sweep
changes nothing.

The expected dates are computed here independently of legal.rules (dateutil), from the
raw facts of each order."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from dateutil.relativedelta import relativedelta

from legal.models import Consent, LegalHold
from legal.registry import MARKER
from legal.services.retention import enforce_retention
from orders.models import Invoice, Order, Payment, Refund
from shop.models import OutboxMessage
from tests.conftest import requires_postgresql
from tests.legal.synthetic import ORIGINAL_POSTCODE, build_history, personal

pytestmark = pytest.mark.django_db

RIGA = ZoneInfo("Europe/Riga")
ORDERS = 10_000
SWEEPS = [
    datetime(2026, 7, 1, 1, tzinfo=UTC),
    datetime(2027, 12, 31, 20, tzinfo=UTC),
    datetime(2028, 9, 1, 1, tzinfo=UTC),
    datetime(2030, 1, 1, 1, tzinfo=UTC),
    datetime(2031, 6, 1, 1, tzinfo=UTC),
    datetime(2033, 2, 1, 1, tzinfo=UTC),
    datetime(2036, 1, 2, 1, tzinfo=UTC),
]


def day(moment):
    return None if moment is None else moment.astimezone(RIGA).date()


def expected_dates(orders, payments, refunds, invoices, holds):
    """{order id: {"contract": date|None, "accounting": ..., "communication": ...}}."""
    out = {}
    for o in orders.values():
        pk = o["id"]
        is_open = o["status"] in ("placed", "confirmed", "paid", "shipped")
        held_open = any(h["closed_at"] is None for h in holds.get(pk, []))
        hold_end = max(
            (
                day(h["closed_at"]) + relativedelta(years=3)
                for h in holds.get(pk, [])
                if h["closed_at"]
            ),
            default=None,
        )
        money = [day(invoices[pk]["issued_at"])]
        money += [day(p["received_at"]) for p in payments.get(pk, [])]
        for r in refunds.get(pk, []):
            money += [day(r["created_at"]), day(r["sent_at"]), day(r["settled_at"])]
        events = [
            day(o[k])
            for k in (
                "placed_at",
                "paid_at",
                "shipped_at",
                "delivered_at",
                "cancelled_at",
                "closed_at",
            )
        ]
        events += money[1:]
        if is_open or held_open:
            out[pk] = {"contract": None, "accounting": None, "communication": None}
            continue
        if o["delivered_at"]:
            contract = day(o["delivered_at"]) + relativedelta(months=26)
        else:
            contract = day(o["cancelled_at"] or o["closed_at"]) + relativedelta(years=3)
        accounting = date(max(d.year for d in money if d) + 5, 12, 31)
        accounting = max(accounting, contract)
        communication = max(d for d in events if d) + relativedelta(years=3)
        dates = {"contract": contract, "accounting": accounting, "communication": communication}
        if hold_end:
            dates = {k: max(v, hold_end) for k, v in dates.items()}
        out[pk] = dates
    return out


def _by_order(rows):
    grouped = {}
    for row in rows:
        grouped.setdefault(row["order_id"], []).append(row)
    return grouped


def check(today: date):
    orders = {o["id"]: o for o in Order.objects.values()}
    invoices = {i["order_id"]: i for i in Invoice.objects.values()}
    payments = _by_order(Payment.objects.values())
    refunds = _by_order(Refund.objects.values())
    holds = _by_order(LegalHold.objects.values())
    expected = expected_dates(orders, payments, refunds, invoices, holds)
    problems = []

    def past(pk, rule):
        until = expected[pk][rule]
        return until is not None and until < today

    for pk, o in orders.items():
        p = personal(pk)
        contract_gone = past(pk, "contract")
        for name in ("first_name", "last_name", "email", "phone"):
            want = MARKER if contract_gone else p[name]
            if o[name] != want:
                problems.append((pk, name, o[name], want))
        if o["street"]:
            want = MARKER if contract_gone else p["street"]
            if o["street"] != want:
                problems.append((pk, "street", o["street"], want))
        if o["postal_code"]:
            want = "LV-10xx" if contract_gone else ORIGINAL_POSTCODE
            if o["postal_code"] != want:
                problems.append((pk, "postal_code", o["postal_code"], want))
        accounting_gone = past(pk, "accounting")
        want = MARKER if accounting_gone else f"{p['first_name']} {p['last_name']}"
        if invoices[pk]["buyer_name"] != want:
            problems.append((pk, "buyer_name", invoices[pk]["buyer_name"], want))
        for payment in payments.get(pk, []):
            want = MARKER if accounting_gone else p["iban"]
            if payment["payer_iban"] != want:
                problems.append((pk, "payer_iban", payment["payer_iban"], want))
        for refund in refunds.get(pk, []):
            want = MARKER if accounting_gone else p["holder"]
            if refund["account_holder"] != want:
                problems.append((pk, "account_holder", refund["account_holder"], want))
    # The history copies follow their rows.
    for row in Order.history.values("id", "email", "last_name"):
        want = MARKER if past(row["id"], "contract") else personal(row["id"])["email"]
        if row["email"] != want:
            problems.append((row["id"], "history email", row["email"], want))
    for row in Payment.history.values("order_id", "payer_name"):
        want = (
            MARKER
            if past(row["order_id"], "accounting")
            else personal(row["order_id"])["payer_name"]
        )
        if row["payer_name"] != want:
            problems.append((row["order_id"], "history payer", row["payer_name"], want))
    # Consents: gone the night after withdrawal (within 3 working days), kept while standing.
    for c in Consent.objects.values("email", "withdrawn_at", "given_at", "pk"):
        gone = c["withdrawn_at"] is not None and day(c["withdrawn_at"]) < today
        if gone != (c["email"] == MARKER):
            problems.append((c["pk"], "consent", c["email"], gone))
    # Emails: 3 years after sending, unless the person's order is held.
    held_emails = {
        orders[h["order_id"]]["email"]
        for hs in holds.values()
        for h in hs
        if h["closed_at"] is None
    }
    for m in OutboxMessage.objects.values("pk", "payload", "delivered_at"):
        sent_until = day(m["delivered_at"]) + relativedelta(years=3)
        erased = "erased" in m["payload"]
        if erased:
            if not sent_until < today:
                problems.append((m["pk"], "outbox erased early", sent_until, today))
        elif sent_until < today and m["payload"]["to"][0] not in held_emails:
            problems.append((m["pk"], "outbox kept too long", sent_until, today))
    return problems


def snapshot():
    return (
        list(Order.objects.order_by("pk").values_list("email", "first_name", "postal_code")),
        list(Invoice.objects.order_by("pk").values_list("buyer_name", flat=True)),
        list(Payment.objects.order_by("pk").values_list("payer_iban", flat=True)),
        list(Consent.objects.order_by("pk").values_list("email", flat=True)),
        list(OutboxMessage.objects.order_by("pk").values_list("payload", flat=True)),
        list(Order.history.order_by("pk").values_list("email", flat=True)),
    )


def test_r29_ten_thousand_orders_swept_through_the_years():
    build_history(ORDERS)
    assert Order.objects.count() == ORDERS
    erased_so_far = 0
    for moment in SWEEPS:
        with time_machine.travel(moment, tick=False):
            report = enforce_retention(batch_size=2000)
            today = day(moment)
            problems = check(today)
            assert not problems, (today, len(problems), problems[:5])
            erased_so_far += report.total
    assert erased_so_far > ORDERS  # everything expired went, in several waves
    before = snapshot()
    with time_machine.travel(SWEEPS[-1], tick=False):
        report = enforce_retention(batch_size=2000)
    assert report.total == 0
    assert snapshot() == before


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r29_batches_swept_at_once_on_connections_of_their_own(monkeypatch):
    """R29 as the nightly job runs it, outside a transaction on PostgreSQL: batches of
    different orders are swept at once, each in a thread on a connection of its own.
    Small batches, so that many are in flight; the outcome is what the rules say, and a
    second sweep changes nothing."""
    from legal.services import retention

    threads = set()
    sweep_batch = retention._sweep_batch

    def spy(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return sweep_batch(*args, **kwargs)

    monkeypatch.setattr(retention, "_sweep_batch", spy)
    build_history(1500)
    for moment in SWEEPS:
        with time_machine.travel(moment, tick=False):
            enforce_retention(batch_size=100)
            problems = check(day(moment))
            assert not problems, (day(moment), len(problems), problems[:5])
    assert len(threads) == retention.WORKERS
    assert threading.current_thread().name not in threads
    before = snapshot()
    with time_machine.travel(SWEEPS[-1], tick=False):
        assert enforce_retention(batch_size=100).total == 0
    assert snapshot() == before
