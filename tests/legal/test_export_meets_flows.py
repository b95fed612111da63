"""The data export (R30) and the retention sweep (R28, R29) where they meet withdrawals and
claims on one order (issue 15, finding 14).

- The export left out each withdrawn line with its inspection (outcome, deduction,
  ground, reason), the claim's lines and its decisions with their reasons, and gave the
  stored files (claim photos, proofs of dispatch) no description.
- Staff's free-text reasons (a line's inspection note, a claim decision's reason, why
  repair and replacement are excluded) were in no retention category: the sweep kept them
  forever and the export did not show them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from legal.access import subject_token
from legal.models import PersonalDataRecord
from legal.registry import MARKER
from legal.services.retention import enforce_retention
from orders.models import Order
from orders.services.payments import record_payment
from returns.claims.decisions import decide_repair, record_obstacle, resolve_claim
from returns.claims.receiving import receive_claim
from returns.claims.services import ClaimLineRequest
from returns.models import Claim, ClaimDecision, Withdrawal, WithdrawalLine
from returns.withdrawals.services import (
    LineInspection,
    RequestedLine,
    attach_proof_of_dispatch,
    inspect_withdrawal,
    receive_withdrawal,
    record_goods_received,
)
from tests.factories import image_bytes
from tests.legal.helpers import deliver, place, settle_refunds

pytestmark = pytest.mark.django_db

EMAIL = "anna@example.lv"
IBAN = "LV80BANK0000435195001"
PLACED = datetime(2026, 1, 5, 9, tzinfo=UTC)
EXPORTED = datetime(2026, 3, 1, 12, tzinfo=UTC)

DEDUCTION_NOTE = "Lid scratched: Anna used the bottle for a week"
REJECTION_NOTE = "Box came back without the pump; Anna says her son kept it"
REPAIR_REASON = "Pump goes to the maker; agreed with Anna Bērziņa on +37120000000"
OBSTACLE_REASON = "The maker could not repair the pump twice; Anna is moving abroad"
RESOLVED_REASON = "New pump fitted and handed to Anna at Brīvības iela 1"
NOTES = [DEDUCTION_NOTE, REJECTION_NOTE]
REASONS = [REPAIR_REASON, OBSTACLE_REASON, RESOLVED_REASON]


def at(month, day, hour=12, year=2026):
    return datetime(year, month, day, hour, tzinfo=UTC)


def png(name="photo.png"):
    return SimpleUploadedFile(name, image_bytes("PNG"), content_type="image/png")


def order_with_everything(later=timedelta(0)) -> Order:
    """Two lines of two units: one unit of each withdrawn (proof of dispatch, inspected
    with a deduction and a rejection, the refund settled), the other of each claimed
    (a photo; repair, an obstacle and the resolution, each with its reason)."""
    with time_machine.travel(PLACED + later, tick=False):
        order = place(email=EMAIL, now=PLACED + later, lines=[("KEU-001", 2), ("KEU-002", 2)])
        record_payment(
            order_id=order.pk,
            amount=order.total,
            method="bank_transfer",
            received_at=at(1, 6) + later,
            payer_name="Anna Bērziņa",
            payer_iban=IBAN,
        )
    order = deliver(order, at(1, 14) + later, at(1, 15) + later)

    with time_machine.travel(at(1, 20) + later, tick=False):
        received = receive_withdrawal(
            order_id=order.pk,
            lines=[
                RequestedLine(sku="KEU-001", quantity=1),
                RequestedLine(sku="KEU-002", quantity=1),
            ],
            iban=IBAN,
            account_holder="Anna Bērziņa",
            reason="Two were too many",
            channel="api",
        )
        withdrawal = attach_proof_of_dispatch(
            withdrawal_id=received.withdrawal.pk, upload=png("receipt.png")
        )
    with time_machine.travel(at(1, 27) + later, tick=False):
        record_goods_received(withdrawal_id=withdrawal.pk, at=at(1, 27) + later)
        first, second = withdrawal.lines.order_by("order_line__sku")
        inspect_withdrawal(
            withdrawal_id=withdrawal.pk,
            results={
                first.pk: LineInspection(
                    outcome="accepted_with_deduction",
                    deduction=Decimal("2.50"),
                    note=DEDUCTION_NOTE,
                ),
                second.pk: LineInspection(
                    outcome="rejected", rejection_ground="incomplete", note=REJECTION_NOTE
                ),
            },
            by=None,
            at=at(1, 27) + later,
        )
        settle_refunds(order, at(1, 27) + later)

    with time_machine.travel(at(2, 2) + later, tick=False):
        claim = receive_claim(
            order_id=order.pk,
            lines=[
                ClaimLineRequest(sku="KEU-001", quantity=1),
                ClaimLineRequest(sku="KEU-002", quantity=1),
            ],
            description="The pumps of both bottles leak.",
            discovered_on=(at(2, 1) + later).date(),
            remedy="repair",
            photos_in=[png("leak.png")],
        )
    with time_machine.travel(at(2, 3) + later, tick=False):
        decide_repair(claim_id=claim.pk, reason=REPAIR_REASON, by=None)
    with time_machine.travel(at(2, 10) + later, tick=False):
        record_obstacle(claim_id=claim.pk, kind="failed", reason=OBSTACLE_REASON, by=None)
    with time_machine.travel(at(2, 12) + later, tick=False):
        resolve_claim(claim_id=claim.pk, reason=RESOLVED_REASON, by=None)
    return Order.objects.get(pk=order.pk)


def export(api_client, when=EXPORTED) -> dict:
    """GET /api/me/data/ as the person, the email proved by the one-time link's token."""
    with time_machine.travel(when, tick=False):
        response = api_client.get(
            "/api/me/data/", HTTP_AUTHORIZATION=f"Bearer {subject_token(EMAIL)}"
        )
    assert response.status_code == 200, response.content
    return response.json()


def test_r30_the_export_shows_withdrawn_lines_claims_decisions_and_files(api_client):
    order = order_with_everything()

    [exported] = export(api_client)["orders"]

    assert exported["number"] == order.number
    [withdrawal] = exported["withdrawals"]
    lines = {line["sku"]: line for line in withdrawal["lines"]}
    assert lines["KEU-001"]["quantity"] == 1
    assert lines["KEU-001"]["outcome"] == "accepted_with_deduction"
    assert lines["KEU-001"]["deduction"] == "2.50"
    assert lines["KEU-001"]["inspection_note"] == DEDUCTION_NOTE
    assert lines["KEU-002"]["outcome"] == "rejected"
    assert lines["KEU-002"]["rejection_ground"] == "incomplete"
    assert lines["KEU-002"]["inspection_note"] == REJECTION_NOTE
    proof = withdrawal["proof_of_dispatch"]
    stored = Withdrawal.objects.get().proof_of_dispatch
    assert proof["content_type"] == "image/png"
    assert proof["size"] == stored.size > 0
    assert proof["name"] == stored.name.rsplit("/", 1)[-1]
    # No customer endpoint serves the proof back yet: the export promises no link.
    assert "url" not in proof

    [claim] = exported["claims"]
    assert claim["description"] == "The pumps of both bottles leak."
    assert claim["obstacle"] == "failed" and claim["obstacle_reason"] == OBSTACLE_REASON
    assert sorted((line["sku"], line["quantity"]) for line in claim["lines"]) == [
        ("KEU-001", 1),
        ("KEU-002", 1),
    ]
    decisions = [(d["kind"], d["to_status"], d["reason"]) for d in claim["decisions"]]
    assert decisions[1:] == [
        ("repair", "repair", REPAIR_REASON),
        ("obstacle", "repair", OBSTACLE_REASON),
        ("resolved", "resolved", RESOLVED_REASON),
    ]
    assert decisions[0][0] == "received"
    [photo] = claim["photos"]
    assert photo["file"]["content_type"] == "image/png"
    assert photo["file"]["size"] == Claim.objects.get().photos.get().size > 0
    assert "url" not in photo["file"]
    # Nothing left over under a bare model label, and staff stay unnamed.
    assert not [key for key in exported if key.startswith("returns.")]
    assert "decided_by" not in claim["decisions"][0]


def test_r30_the_export_of_more_withdrawals_and_claims_takes_no_more_queries(api_client):
    order_with_everything()

    def queries_and_orders() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as captured:
            data = export(api_client, when=at(6, 1))
        return len(captured), data["orders"]

    one, _orders = queries_and_orders()
    order_with_everything(later=timedelta(days=60))
    two, orders = queries_and_orders()

    assert two == one
    assert len(orders) == 2
    for exported in orders:
        [withdrawal] = exported["withdrawals"]
        assert sorted(line["inspection_note"] for line in withdrawal["lines"]) == sorted(NOTES)
        [claim] = exported["claims"]
        assert [d["reason"] for d in claim["decisions"]][1:] == REASONS
        assert len(claim["lines"]) == 2 and len(claim["photos"]) == 1


def test_r28_r29_the_sweep_erases_inspection_notes_and_decision_reasons_with_the_claims(
    api_client,
):
    order = order_with_everything()
    with time_machine.travel(EXPORTED, tick=False):
        enforce_retention()
    keep_until = PersonalDataRecord.objects.get(order=order, category="claims").keep_until
    assert keep_until is not None

    def sweep(day):
        with time_machine.travel(datetime(day.year, day.month, day.day, 12, tzinfo=UTC)):
            enforce_retention()

    sweep(keep_until)  # the last day kept: nothing goes yet
    notes = sorted(WithdrawalLine.objects.values_list("inspection_note", flat=True))
    assert notes == sorted(NOTES)
    assert set(ClaimDecision.objects.values_list("reason", flat=True)) >= set(REASONS)

    sweep(keep_until + timedelta(days=1))

    assert list(WithdrawalLine.objects.values_list("inspection_note", flat=True)) == [MARKER] * 2
    history = WithdrawalLine.history.model.objects.values_list("inspection_note", flat=True)
    assert set(history) <= {"", MARKER}
    assert set(ClaimDecision.objects.values_list("reason", flat=True)) == {MARKER}
    claim = Claim.objects.get()
    assert claim.obstacle_reason == MARKER and claim.description == MARKER
    # The facts stay for statistics (IP11): the outcome, the deduction, the decisions.
    first = WithdrawalLine.objects.get(order_line__sku="KEU-001")
    assert first.outcome == "accepted_with_deduction" and first.deduction == Decimal("2.50")
    kinds = list(ClaimDecision.objects.values_list("kind", flat=True))
    assert kinds == ["received", "repair", "obstacle", "resolved"]
