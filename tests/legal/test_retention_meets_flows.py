"""Retention (R28, R29) where it meets the other flows on one order: withdrawals, claims
with photos, card payments, refunds and restrictions (issue 15, findings 1 and 10).

- Finding 1: the sweep raised `FieldError` on any order with a withdrawal or a claim and
  stopped; one order's error stopped every other order's erasure.
- Finding 10: an erasure request wiped an order under an open withdrawal and a pending
  refund; a restriction did not stop the sweep; erased files stayed on disk.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from legal import holds, registry
from legal.access import subject_token
from legal.models import DataSubjectRequest, ErasureRecord, PersonalDataRecord
from legal.registry import MARKER
from legal.services import erasure
from legal.services import requests as request_services
from legal.services.retention import enforce_retention
from orders.models import BankEntry, BankStatement, IdempotencyRecord, Order, StripeEvent
from orders.services.payments import record_payment
from orders.services.refunds import create_refund
from returns.claims.decisions import reject_claim
from returns.claims.receiving import receive_claim
from returns.claims.services import ClaimLineRequest
from returns.models import Claim, ClaimPhoto, Withdrawal
from returns.withdrawals.services import (
    LineInspection,
    RequestedLine,
    attach_proof_of_dispatch,
    inspect_withdrawal,
    receive_withdrawal,
    record_goods_received,
)
from tests.factories import image_bytes, pdf_bytes
from tests.legal.helpers import deliver, place, settle_refunds

pytestmark = pytest.mark.django_db

PNG = image_bytes("PNG")  # a real image: uploads are re-encoded
PDF = pdf_bytes()  # a real PDF: uploads are checked (issue 14)
IBAN = "LV80BANK0000435195001"
EMAIL = "anna@example.lv"
PHONE = "+37120000000"
LINES = [("KEU-001", 1), ("KEU-002", 1)]

PLACED = datetime(2026, 1, 5, 9, tzinfo=UTC)
DELIVERED = datetime(2026, 1, 15, 12, tzinfo=UTC)  # contact data kept to 15 Mar 2028
DUE = datetime(2028, 3, 20, 12, tzinfo=UTC)  # the contract categories are past their date
ALL_DUE = datetime(2032, 1, 2, 12, tzinfo=UTC)  # accounting (2031) and emails too


def at(year, month, day, hour=12):
    return datetime(year, month, day, hour, tzinfo=UTC)


def sweep(when: datetime, **kwargs):
    with time_machine.travel(when, tick=False):
        return enforce_retention(batch_size=kwargs.pop("batch_size", 5), **kwargs)


def delivered(email=EMAIL, *, card=False, consents=None, later=timedelta(0)) -> Order:
    """Placed, paid (by bank or by card) and delivered in January 2026 (or `later`)."""
    with time_machine.travel(PLACED + later, tick=False):
        order = place(email=email, phone=PHONE, now=PLACED + later, lines=LINES, consents=consents)
        record_payment(
            order_id=order.pk,
            amount=order.total,
            method="card" if card else "bank_transfer",
            received_at=at(2026, 1, 6) + later,
            payer_name="" if card else "Anna Bērziņa",
            payer_iban="" if card else IBAN,
            stripe_payment_intent=f"pi_{order.pk}" if card else None,
        )
    return deliver(order, at(2026, 1, 14) + later, DELIVERED + later)


def open_withdrawal(order: Order, when=None) -> Withdrawal:
    """A withdrawal of one line after delivery, with a proof of dispatch on disk."""
    with time_machine.travel(when or at(2026, 1, 20), tick=False):
        received = receive_withdrawal(
            order_id=order.pk,
            lines=[RequestedLine(sku="KEU-001", quantity=1)],
            iban=IBAN,
            account_holder="Anna Bērziņa",
            reason="Too small",
            channel="api",
        )
        withdrawal = attach_proof_of_dispatch(
            withdrawal_id=received.withdrawal.pk,
            upload=SimpleUploadedFile("receipt.pdf", PDF, content_type="application/pdf"),
        )
    return Withdrawal.objects.get(pk=withdrawal.pk)


def finish_withdrawal(withdrawal: Withdrawal, when=None) -> None:
    """Goods back, inspected and accepted, the refund settled: nothing holds any more."""
    when = when or at(2026, 1, 27)
    with time_machine.travel(when, tick=False):
        record_goods_received(withdrawal_id=withdrawal.pk, at=when)
        line = withdrawal.lines.get()
        inspect_withdrawal(
            withdrawal_id=withdrawal.pk,
            results={line.pk: LineInspection(outcome="accepted", note="Fine; Anna packed it well")},
            by=None,
            at=when,
        )
        settle_refunds(withdrawal.order, when)


def claim_with_photo(order: Order, when=None) -> Claim:
    when = when or at(2026, 2, 1)
    with time_machine.travel(when, tick=False):
        return receive_claim(
            order_id=order.pk,
            lines=[ClaimLineRequest(sku="KEU-002", quantity=1)],
            description="The pump of the bottle is broken; call Anna on +37120000000.",
            discovered_on=(when - timedelta(days=1)).date(),
            remedy="repair",
            photos_in=[SimpleUploadedFile("anna.png", PNG, content_type="image/png")],
            iban=IBAN,
            account_holder="Anna Bērziņa",
        )


def close_claim(claim: Claim, when) -> None:
    with time_machine.travel(when, tick=False):
        reject_claim(claim_id=claim.pk, reason="Not a defect.", by=None)


def staff_refund(order: Order, when=None):
    with time_machine.travel(when or at(2026, 2, 1), tick=False):
        return create_refund(
            order_id=order.pk,
            amount=Decimal("1.00"),
            reason="staff",
            iban=IBAN,
            account_holder="Anna Bērziņa",
        )


def erasure_request(api_client, when, email=EMAIL) -> dict:
    with time_machine.travel(when, tick=False):
        response = api_client.post(
            "/api/me/requests/",
            {"type": "erasure"},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {subject_token(email)}",
        )
    assert response.status_code == 201, response.json()
    return response.json()["answer"]


def restrict(api_client, when, email=EMAIL) -> DataSubjectRequest:
    with time_machine.travel(when, tick=False):
        response = api_client.post(
            "/api/me/requests/",
            {"type": "restriction"},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {subject_token(email)}",
        )
    assert response.status_code == 201, response.json()
    return DataSubjectRequest.objects.get(kind="restriction", email=email)


def contact(order: Order) -> tuple[str, str]:
    order.refresh_from_db()
    return order.email, order.phone


def the_other_rows(order: Order) -> None:
    """Rows of the registered models no flow above creates: the checkout's idempotency
    record, a Stripe event, a bank entry, a courier label."""
    from delivery.models import Shipment

    IdempotencyRecord.objects.create(
        key=f"k-{order.pk}",
        request_hash="0" * 64,
        response_status=201,
        response_body={"number": order.number, "email": order.email},
        order=order,
    )
    StripeEvent.objects.create(
        event_id=f"evt_{order.pk}",
        type="payment_intent.succeeded",
        payload={"id": f"evt_{order.pk}", "receipt_email": order.email},
        order=order,
    )
    statement, _ = BankStatement.objects.get_or_create(file_name="s.xml", sha256="0" * 64)
    BankEntry.objects.create(
        statement=statement,
        entry_key=f"E{order.pk}",
        amount=order.total,
        booking_date=date(2026, 1, 6),
        debtor_name="Anna Bērziņa",
        debtor_iban=IBAN,
        remittance_info=order.number,
        order=order,
    )
    Shipment.objects.create(order=order, label_pdf=b"%PDF-1.4 label for Anna")


def registered_rows(order_ids: list[int]):
    """(model label, field, value, eraser) of every registered order-scoped personal
    field of every row (and history copy) of these orders."""
    for fieldset in registry.order_fieldsets():
        for model in filter(None, (fieldset.model, fieldset.history_model)):
            rows = model._base_manager.filter(**{f"{fieldset.order_path}__in": order_ids})
            for row in rows.values(*fieldset.fields):
                for name, eraser in fieldset.fields.items():
                    yield fieldset, model._meta.label, name, row[name], eraser


def stored_files(*names: str) -> list[str]:
    return [name for name in names if name and default_storage.exists(name)]


# --- Finding 1 -------------------------------------------------------------------------------


def test_r29_finding1_the_sweep_over_every_flow_never_raises_and_erases_exactly_what_is_due(
    shop_ready, api_client, django_capture_on_commit_callbacks
):
    """R29 (issue 15, finding 1): orders with a finished withdrawal (proof of dispatch on
    disk), a closed claim with a photo, a card payment, a settled refund, a standing
    restriction and every other registered model's rows: the sweep never raises; on the
    first day past the contract date it erases the contract categories of every order
    not held (the closed claim keeps its order 3 years, the restriction while it
    stands), keeps the accounting records, and once everything is past its date every
    registered personal field of every row (and history copy) of the orders not held is
    erased."""
    withdrawn = delivered()
    withdrawal = open_withdrawal(withdrawn)
    finish_withdrawal(withdrawal)
    claimed = delivered()
    claim = claim_with_photo(claimed)
    close_claim(claim, at(2026, 2, 10))
    by_card = delivered(card=True, consents={"marketing_email": True})
    refunded = delivered()
    staff_refund(refunded)
    settle_refunds(refunded, at(2026, 2, 2))
    restricted = delivered(email="rita@example.lv")
    restrict(api_client, at(2026, 2, 1), email="rita@example.lv")
    orders = [withdrawn, claimed, by_card, refunded]
    for order in [*orders, restricted]:
        the_other_rows(order)
    ids = [o.pk for o in orders]
    # Every registered order-scoped model has rows here: nothing is left unexercised.
    exercised = {label for _fs, label, _name, value, _e in registered_rows(ids) if value}
    declared = {
        m._meta.label
        for fs in registry.order_fieldsets()
        for m in filter(None, (fs.model, fs.history_model))
    }
    assert declared - exercised == set()
    proof = withdrawal.proof_of_dispatch.name
    photo = ClaimPhoto.objects.get(claim=claim).file.name
    assert stored_files(proof, photo) == [proof, photo]

    with django_capture_on_commit_callbacks(execute=True):
        report = sweep(DUE)
    assert report.failed == 0
    for order in (withdrawn, by_card, refunded):
        order.refresh_from_db()
        assert (order.email, order.phone, order.first_name, order.street) == (MARKER,) * 4
        assert order.postal_code == "LV-10xx"  # the area stays for statistics
    assert Withdrawal.objects.get(pk=withdrawal.pk).account_holder == MARKER
    assert Withdrawal.objects.get(pk=withdrawal.pk).proof_of_dispatch.name == MARKER
    assert stored_files(proof) == []
    # The closed claim holds its order until 10 Feb 2029 (R28), photo and all.
    assert contact(claimed) == (EMAIL, PHONE)
    assert Claim.objects.get(pk=claim.pk).description.startswith("The pump")
    assert stored_files(photo) == [photo]
    # A standing restriction keeps everything (Art 18: only stored).
    assert contact(restricted) == ("rita@example.lv", PHONE)
    # Accounting records stay to 31 Dec 2031.
    assert BankEntry.objects.get(order=withdrawn).debtor_name == "Anna Bērziņa"

    with django_capture_on_commit_callbacks(execute=True):
        report = sweep(ALL_DUE)
    assert report.failed == 0
    left = [
        (label, name)
        for fieldset, label, name, value, eraser in registered_rows(ids)
        if not eraser.is_erased(value)
    ]
    assert left == []
    assert stored_files(proof, photo) == []
    assert contact(restricted) == ("rita@example.lv", PHONE)
    assert not PersonalDataRecord.objects.filter(
        order_id__in=ids, erased_at__isnull=True, category__in=["contact", "claims"]
    ).exists()
    assert sweep(ALL_DUE).total == 0  # idempotent


# --- The sweep never stops on one order -----------------------------------------------------


def test_r28_finding1_an_error_in_one_order_does_not_stop_the_sweep(
    shop_ready, monkeypatch, caplog
):
    """R28, R29 (issue 15, finding 1): an error while erasing one order is logged with
    that order's id only (no personal data, not even the error's text), every other
    order is swept, the run reports the failure, and `enforce_retention` exits non-zero;
    once the cause is gone the next run erases the order (resumable)."""
    orders = [delivered(email=f"p{n}@example.lv") for n in range(3)]
    broken = orders[1]
    real = erasure._erase_orders

    def fail_for_one(categories_by_order, now):
        if broken.pk in categories_by_order:
            raise RuntimeError(f"cannot write {broken.email}")  # personal data in the text
        return real(categories_by_order, now)

    monkeypatch.setattr(erasure, "_erase_orders", fail_for_one)
    caplog.set_level(logging.INFO)
    report = sweep(DUE, batch_size=1000)  # all three orders in one batch
    assert report.failed_orders == [broken.pk]
    assert contact(orders[0])[0] == MARKER and contact(orders[2])[0] == MARKER
    assert contact(broken)[0] == broken.email == "p1@example.lv"
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f"order {broken.pk} " in m for m in failures), failures
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "p1@example.lv" not in logged and "cannot write" not in logged

    with time_machine.travel(DUE, tick=False), pytest.raises(CommandError) as exc:
        call_command("enforce_retention", "--no-progress")
    assert exc.value.returncode == 1

    from legal import tasks

    caplog.clear()
    with time_machine.travel(DUE, tick=False):
        tasks.enforce_retention.apply()
    assert any("1 order(s)" in r.getMessage() and r.name == "legal.tasks" for r in caplog.records)

    monkeypatch.setattr(erasure, "_erase_orders", real)
    report = sweep(DUE)
    assert report.failed == 0 and contact(broken)[0] == MARKER


def test_r28_a_failing_step_does_not_stop_the_others(shop_ready, monkeypatch, caplog):
    """R28: a sweeper that fails (here the outbox's) is logged by name; the orders and the
    other sweepers are still swept and the run reports the failure."""
    order = delivered()
    [outbox] = [s for s in registry.sweepers() if s.name == "outbox"]

    def broken(**kwargs):
        raise RuntimeError("anna@example.lv")

    monkeypatch.setitem(
        registry._registry.sweepers,
        "outbox",
        registry.Sweeper(name="outbox", category=outbox.category, func=broken),
    )
    report = sweep(DUE)
    assert report.failed_steps == ["outbox"]
    assert contact(order)[0] == MARKER
    assert "anna@example.lv" not in caplog.text


# --- Holds (finding 10) ----------------------------------------------------------------------


def _open_withdrawal_hold(order, api_client):
    withdrawal = open_withdrawal(order)
    return f"open withdrawal #{withdrawal.pk}", lambda when: finish_withdrawal(withdrawal, when)


def _unsettled_refund_hold(order, api_client):
    refund = staff_refund(order)
    return f"unsettled refund #{refund.pk}", lambda when: settle_refunds(order, when)


def _open_claim_hold(order, api_client):
    claim = claim_with_photo(order)
    return f"conformity claim #{claim.pk}", lambda when: close_claim(claim, when)


def _restriction_hold(order, api_client):
    request = restrict(api_client, at(2026, 2, 1))

    def lift(when):
        with time_machine.travel(when, tick=False):
            request_services.lift_restriction(request_id=request.pk)

    return "restriction of processing (GDPR Art 18)", lift


HOLDS = {
    "open_withdrawal": _open_withdrawal_hold,
    "unsettled_refund": _unsettled_refund_hold,
    "open_claim": _open_claim_hold,
    "restriction": _restriction_hold,
}


@pytest.mark.parametrize("kind", list(HOLDS))
def test_r28_finding10_each_hold_keeps_contact_data_from_the_sweep_and_from_erasure(
    kind, shop_ready, api_client, django_capture_on_commit_callbacks
):
    """R28, R30 (issue 15, finding 10): an open withdrawal, an unsettled refund, an open
    claim and a standing restriction each keep the order's email and phone through the
    sweep past their date and through an erasure request, whose answer names the hold;
    once the hold ends the data goes at the next sweep past its date (a closed claim
    keeps it 3 more years)."""
    order = delivered()
    reason, end_hold = HOLDS[kind](order, api_client)
    assert order.pk in holds.held_order_ids([order.pk])

    report = sweep(DUE)
    assert report.failed == 0
    assert contact(order) == (EMAIL, PHONE)
    assert not ErasureRecord.objects.filter(order=order, category="contact").exists()

    with django_capture_on_commit_callbacks(execute=True):
        answer = erasure_request(api_client, at(2028, 3, 21))
    assert contact(order) == (EMAIL, PHONE)
    kept = {(k.get("order"), k["category"]): k for k in answer["kept"]}
    assert reason in kept[(order.number, "contact")]["why"]
    assert (order.number, "contact") not in {
        (e.get("order"), e["category"]) for e in answer["erased"]
    }

    end_hold(at(2028, 3, 22))
    assert order.pk not in holds.held_order_ids([order.pk])
    with django_capture_on_commit_callbacks(execute=True):
        sweep(at(2028, 3, 23))
    if kind == "open_claim":  # R28: 3 years after the claim closed
        assert contact(order) == (EMAIL, PHONE)
        with django_capture_on_commit_callbacks(execute=True):
            sweep(at(2031, 3, 22))
        assert contact(order) == (EMAIL, PHONE)  # the last day kept
        with django_capture_on_commit_callbacks(execute=True):
            sweep(at(2031, 3, 24))
    assert contact(order) == (MARKER, MARKER)


def test_r28_finding10_the_hold_rule_is_one_sql_condition(shop_ready, django_assert_num_queries):
    """R28: `legal.holds` answers for a whole batch in one query (EXISTS per kind), and
    the ledger's holds name each of them."""
    plain = delivered()
    withdrawn = delivered()
    withdrawal = open_withdrawal(withdrawn)
    refunded = delivered()
    refund = staff_refund(refunded)
    ids = [plain.pk, withdrawn.pk, refunded.pk]
    with django_assert_num_queries(1):
        held = holds.held_order_ids(ids)
    assert held == {withdrawn.pk, refunded.pk}
    reasons = {
        order_id: sorted(h.reason for h in hs if h.is_open)
        for order_id, hs in holds.holds_for(ids).items()
    }
    assert reasons[withdrawn.pk] == sorted(
        [f"open withdrawal #{withdrawal.pk}", f"unsettled refund #{withdrawal.refund_id}"]
    )
    assert reasons[refunded.pk] == [f"unsettled refund #{refund.pk}"]
    assert plain.pk not in reasons


# --- Files (finding 10) ---------------------------------------------------------------------


def test_r28_finding10_erasure_deletes_stored_files_and_tolerates_missing_ones(
    shop_ready, django_capture_on_commit_callbacks
):
    """R28 (issue 15, finding 10): erasing a claim's photos and a withdrawal's proof of
    dispatch deletes the files from storage after commit, not only their names; a file
    already gone does not stop the erasure."""
    order = delivered()
    withdrawal = open_withdrawal(order)
    finish_withdrawal(withdrawal)
    claim = claim_with_photo(order, at(2026, 1, 22))
    close_claim(claim, at(2026, 1, 23))
    second = claim_with_photo(order, at(2026, 1, 24))
    close_claim(second, at(2026, 1, 25))
    proof = withdrawal.proof_of_dispatch.name
    photos = list(ClaimPhoto.objects.filter(claim__order=order).values_list("file", flat=True))
    assert len(stored_files(proof, *photos)) == 3
    default_storage.delete(photos[1])  # gone already (a restore, a manual clean-up)

    now = at(2029, 1, 26)
    with time_machine.travel(now, tick=False):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            erasure.erase_order_data(items={order.pk: ["claims"]}, reason="retention", now=now)
        assert stored_files(proof, *photos) == [proof, photos[0]]  # not before commit
        for callback in callbacks:
            callback()
    assert stored_files(proof, *photos) == []
    assert set(ClaimPhoto.objects.filter(claim__order=order).values_list("file", flat=True)) == {
        MARKER
    }


def test_r29_holds_cost_the_sweep_no_query_per_order(shop_ready):
    """R29: holds are SQL conditions over a batch, not a loop over its orders: sweeping
    six held and unheld orders with withdrawals costs the same queries as sweeping two."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def orders(count, later):
        for n in range(count):
            order = delivered(email=f"q{n}@example.lv", later=later)
            if n % 2:
                open_withdrawal(order, at(2026, 1, 20) + later)

    orders(2, timedelta(0))
    with CaptureQueriesContext(connection) as two:
        assert sweep(DUE, batch_size=10000).erased["contact"] == 1
    orders(6, timedelta(days=120))
    with CaptureQueriesContext(connection) as six:
        assert sweep(DUE + timedelta(days=120), batch_size=10000).erased["contact"] == 3
    assert len(six.captured_queries) <= len(two.captured_queries)
