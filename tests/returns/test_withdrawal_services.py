"""returns.withdrawals.services: return, proof, inspection, the refund and closing (R20-R22)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from orders.models import Order, Refund, RefundStatus
from returns.models import InspectionOutcome, RejectionGround, Withdrawal, WithdrawalStatus
from returns.withdrawals import services
from returns.withdrawals.services import LineInspection, RequestedLine
from shop.calendar import RIGA
from shop.deadlines import run_all
from shop.errors import InvalidInput, Refused
from tests.factories import pdf_bytes
from tests.returns.withdrawal_support import HOLDER, IBAN, delivered_order, make_staff

pytestmark = pytest.mark.django_db


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def withdraw(order: Order, lines=(), *, at: datetime | None = None, reason: str = ""):
    return services.receive_withdrawal(
        order_id=order.pk,
        lines=[RequestedLine(sku, quantity) for sku, quantity in lines],
        iban=IBAN,
        account_holder=HOLDER,
        reason=reason,
        channel="api",
        received_at=at,
    ).withdrawal


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def accept_all(withdrawal: Withdrawal) -> dict[int, LineInspection]:
    return {line.pk: LineInspection(InspectionOutcome.ACCEPTED) for line in withdrawal.lines.all()}


@pytest.fixture
def clerk(db):
    return make_staff(
        "returns.inspect_withdrawal", "returns.receive_returned_goods", "orders.approve_refund"
    )


# --- R21: the hold and its release ---------------------------------------------------------


def test_r21_refund_held_until_goods_arrive_and_inspection_is_done(clerk):
    order, _ = delivered_order()
    withdrawal = withdraw(order)
    refund = withdrawal.refund
    assert refund.status == RefundStatus.PENDING
    assert refund.due_date == withdrawal.refund_due_date

    services.record_goods_received(withdrawal_id=withdrawal.pk)
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.GOODS_RECEIVED
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PENDING  # not inspected yet

    services.inspect_withdrawal(
        withdrawal_id=withdrawal.pk, results=accept_all(withdrawal), by=clerk
    )
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.REFUNDED
    refund.refresh_from_db()
    assert (refund.status, refund.amount) == (RefundStatus.READY, order.total)


def test_r21_proof_of_dispatch_releases_the_hold_at_once():
    """R21 (T7.7): whichever comes first: proof of dispatch releases the held refund."""
    order, _ = delivered_order()
    withdrawal = withdraw(order)
    upload = SimpleUploadedFile("kvits.png", png_bytes(), content_type="image/png")
    services.attach_proof_of_dispatch(withdrawal_id=withdrawal.pk, upload=upload)
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.GOODS_IN_TRANSIT
    assert withdrawal.proof_content_type == "image/png"
    assert withdrawal.proof_of_dispatch.name.endswith(".png")
    assert "kvits" not in withdrawal.proof_of_dispatch.name
    assert withdrawal.refund.status == RefundStatus.READY


@pytest.mark.parametrize(
    ("content", "name", "code"),
    [
        (b"MZ\x90\x00 not an image", "kvits.png", "unsupported_type"),  # an .exe named .png
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "kvits.png", "damaged"),
        (b"%PDF-1.7\n1 0 obj", "kvits.pdf", "damaged"),
        (b"", "kvits.pdf", "empty"),
    ],
)
def test_r21_proof_checked_by_content_not_by_name(content, name, code):
    order, _ = delivered_order()
    withdrawal = withdraw(order)
    with pytest.raises(InvalidInput) as refused:
        services.attach_proof_of_dispatch(
            withdrawal_id=withdrawal.pk, upload=SimpleUploadedFile(name, content)
        )
    assert refused.value.errors[0]["code"] == code
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.RECEIVED
    assert withdrawal.refund.status == RefundStatus.PENDING


def test_r21_proof_size_is_limited(settings):
    from returns.withdrawals import proof

    order, _ = delivered_order()
    withdrawal = withdraw(order)
    big = SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * proof.MAX_BYTES + b"%%EOF")
    with pytest.raises(InvalidInput) as refused:
        services.attach_proof_of_dispatch(withdrawal_id=withdrawal.pk, upload=big)
    assert refused.value.errors[0]["code"] == "too_large"


def test_a_pdf_proof_is_accepted():
    order, _ = delivered_order()
    withdrawal = withdraw(order)
    pdf = pdf_bytes()
    services.attach_proof_of_dispatch(
        withdrawal_id=withdrawal.pk, upload=SimpleUploadedFile("r.pdf", pdf)
    )
    withdrawal.refresh_from_db()
    assert withdrawal.proof_content_type == "application/pdf"


def test_r21_overdue_withdrawal_refund_is_flagged_by_run_deadlines():
    """R21: due 14 calendar days after the statement; still held after that: flagged."""
    order, _ = delivered_order(delivered_at=riga(2026, 11, 19, 9, 0))
    with time_machine.travel(riga(2026, 11, 20, 10, 0), tick=False):
        withdrawal = withdraw(order)
    assert withdrawal.refund_due_date.isoformat() == "2026-12-04"
    with time_machine.travel(riga(2026, 12, 4, 23, 0), tick=False):
        run_all()
        assert Refund.objects.get(pk=withdrawal.refund_id).overdue_flagged_at is None
    with time_machine.travel(riga(2026, 12, 5, 0, 30), tick=False):
        report = run_all()
        refund = Refund.objects.get(pk=withdrawal.refund_id)
        assert report["overdue_refunds"] == 1
        assert refund.overdue_flagged_at is not None and refund.is_overdue


# --- R20: the goods back ---------------------------------------------------------------------


def test_r20_return_delivered_marks_the_goods_received():
    order, _ = delivered_order()
    withdrawal = withdraw(order)
    at = withdrawal.received_at + timedelta(days=3)
    assert services.return_delivered(order_id=order.pk, at=at) == 1
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.goods_received_at) == (
        WithdrawalStatus.GOODS_RECEIVED,
        at,
    )
    assert not withdrawal.returned_late
    assert services.return_delivered(order_id=order.pk, at=at) == 0  # applied once


def test_r22_goods_returned_late_are_flagged_for_staff():
    """R22 (T7.10): more than 14 days after the statement: flagged, staff decide."""
    order, _ = delivered_order(delivered_at=riga(2026, 11, 19, 9, 0))
    with time_machine.travel(riga(2026, 11, 20, 10, 0), tick=False):
        withdrawal = withdraw(order)
    on_time = services.record_goods_received(
        withdrawal_id=withdrawal.pk, at=riga(2026, 12, 4, 23, 59)
    )
    assert not on_time.returned_late

    second, _ = delivered_order(delivered_at=riga(2026, 11, 19, 9, 0))
    with time_machine.travel(riga(2026, 11, 20, 10, 0), tick=False):
        late = withdraw(second)
    late = services.record_goods_received(withdrawal_id=late.pk, at=riga(2026, 12, 5, 0, 1))
    assert late.returned_late


# --- R22: inspection ---------------------------------------------------------------------------


def received_goods(lines, prices, *, sealed=()):
    from shop.models import Product

    order, _ = delivered_order(lines, prices=prices)
    Product.objects.filter(sku__in=sealed).update(sealed_hygiene=True)
    order.lines.filter(sku__in=sealed).update(sealed_hygiene=True)
    withdrawal = withdraw(order)
    services.record_goods_received(withdrawal_id=withdrawal.pk)
    return order, Withdrawal.objects.get(pk=withdrawal.pk)


def line_of(withdrawal: Withdrawal, sku: str):
    return withdrawal.lines.get(order_line__sku=sku)


def test_r22_deduction_is_capped_at_the_line_price_and_needs_a_reason(clerk):
    _order, withdrawal = received_goods([("KEU-001", 2)], {"KEU-001": Decimal("18.90")})
    line = line_of(withdrawal, "KEU-001")
    with pytest.raises(InvalidInput) as too_much:
        services.inspect_withdrawal(
            withdrawal_id=withdrawal.pk,
            results={line.pk: LineInspection("accepted_with_deduction", Decimal("37.81"), "", "x")},
            by=clerk,
        )
    assert too_much.value.errors[0]["code"] == "exceeds_price"
    with pytest.raises(InvalidInput) as no_reason:
        services.inspect_withdrawal(
            withdrawal_id=withdrawal.pk,
            results={line.pk: LineInspection("accepted_with_deduction", Decimal("5.00"))},
            by=clerk,
        )
    assert no_reason.value.errors[0]["code"] == "required"

    services.inspect_withdrawal(
        withdrawal_id=withdrawal.pk,
        results={
            line.pk: LineInspection(
                "accepted_with_deduction", Decimal("37.80"), note="used, scratched"
            )
        },
        by=clerk,
    )
    withdrawal.refresh_from_db()
    # the whole line price deducted; only the delivery fee (whole order withdrawn) is left
    assert withdrawal.refund_amount == Decimal("2.00")
    assert (withdrawal.refund.amount, withdrawal.refund.status) == (
        Decimal("2.00"),
        RefundStatus.READY,
    )


def test_r22_deduction_lowers_the_refund(clerk):
    order, withdrawal = received_goods(
        [("KEU-001", 1), ("KEU-002", 1)],
        {"KEU-001": Decimal("18.90"), "KEU-002": Decimal("24.20")},
    )
    assert withdrawal.refund.amount == Decimal("45.10")  # 18.90 + 24.20 + 2.00 fee
    services.inspect_withdrawal(
        withdrawal_id=withdrawal.pk,
        results={
            line_of(withdrawal, "KEU-001").pk: LineInspection(
                "accepted_with_deduction", Decimal("5.00"), note="pump broken"
            ),
            line_of(withdrawal, "KEU-002").pk: LineInspection("accepted"),
        },
        by=clerk,
    )
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.status) == (Decimal("40.10"), RefundStatus.READY)


def test_r22_unsealed_hygiene_product_rejected(clerk):
    """R22 (CRD Art 16(e)): a sealed hygiene product unsealed after delivery is rejected
    and not refunded; only a sealed_hygiene line can be rejected on that ground."""
    _order, withdrawal = received_goods(
        [("KEU-001", 1), ("KEU-HYG", 1)],
        {"KEU-001": Decimal("18.90"), "KEU-HYG": Decimal("24.20")},
        sealed=["KEU-HYG"],
    )
    normal, hygiene = line_of(withdrawal, "KEU-001"), line_of(withdrawal, "KEU-HYG")
    with pytest.raises(InvalidInput) as wrong:
        services.inspect_withdrawal(
            withdrawal_id=withdrawal.pk,
            results={
                normal.pk: LineInspection("rejected", rejection_ground="hygiene_unsealed"),
                hygiene.pk: LineInspection("accepted"),
            },
            by=clerk,
        )
    assert wrong.value.errors[0]["code"] == "not_sealed_hygiene"
    services.inspect_withdrawal(
        withdrawal_id=withdrawal.pk,
        results={
            normal.pk: LineInspection("accepted"),
            hygiene.pk: LineInspection(
                "rejected", rejection_ground=RejectionGround.HYGIENE_UNSEALED, note="seal broken"
            ),
        },
        by=clerk,
    )
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.REFUNDED
    # R21 (changed 2026-12-04): the fee comes back only when the goods ACCEPTED cover the
    # whole contract; the rejected hygiene product stays bought, so the fee stays charged.
    assert withdrawal.refund.amount == Decimal("18.90")


def test_r22_everything_rejected_refunds_nothing(clerk):
    order, withdrawal = received_goods([("KEU-001", 1)], {"KEU-001": Decimal("10.00")})
    line = line_of(withdrawal, "KEU-001")
    services.inspect_withdrawal(
        withdrawal_id=withdrawal.pk,
        results={line.pk: LineInspection("rejected", rejection_ground="not_returned")},
        by=clerk,
    )
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.REJECTED
    assert withdrawal.refund.status == RefundStatus.FAILED
    assert Refund.objects.filter(order=order).committed_total() == Decimal("0.00")


def test_inspection_needs_the_goods_and_every_line(clerk):
    order, _ = delivered_order([("KEU-001", 1), ("KEU-002", 1)])
    withdrawal = withdraw(order)
    with pytest.raises(Refused) as refused:
        services.inspect_withdrawal(
            withdrawal_id=withdrawal.pk, results=accept_all(withdrawal), by=clerk
        )
    assert refused.value.code == "not_ready_for_inspection"
    services.record_goods_received(withdrawal_id=withdrawal.pk)
    first = withdrawal.lines.first()
    with pytest.raises(InvalidInput):
        services.inspect_withdrawal(
            withdrawal_id=withdrawal.pk,
            results={first.pk: LineInspection(InspectionOutcome.ACCEPTED)},
            by=clerk,
        )


def test_r21_proof_first_then_inspection_lowers_a_refund_not_yet_approved(clerk):
    order, _ = delivered_order([("KEU-001", 1)], prices={"KEU-001": Decimal("30.00")})
    withdrawal = withdraw(order)
    services.attach_proof_of_dispatch(
        withdrawal_id=withdrawal.pk, upload=SimpleUploadedFile("p.png", png_bytes())
    )
    services.record_goods_received(withdrawal_id=withdrawal.pk)
    line = withdrawal.lines.get()
    services.inspect_withdrawal(
        withdrawal_id=withdrawal.pk,
        results={line.pk: LineInspection("accepted_with_deduction", Decimal("4.50"), note="used")},
        by=clerk,
    )
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.status) == (Decimal("27.50"), RefundStatus.READY)


# --- Closing orders -------------------------------------------------------------------------


def test_delivered_orders_close_when_the_period_is_over_and_nothing_is_open(clerk):
    quiet, _ = delivered_order(delivered_at=riga(2026, 11, 2, 14, 0))  # period ends 16 Nov
    busy, _ = delivered_order(delivered_at=riga(2026, 11, 2, 14, 0))
    with time_machine.travel(riga(2026, 11, 10, 10, 0), tick=False):
        withdrawal = withdraw(busy)
    with time_machine.travel(riga(2026, 11, 16, 23, 59), tick=False):
        assert run_all()["close_orders"] == 0
    with time_machine.travel(riga(2026, 11, 17, 0, 1), tick=False):
        call_command("run_deadlines")
    quiet.refresh_from_db()
    busy.refresh_from_db()
    assert quiet.status == "closed"
    assert busy.status == "delivered"  # its withdrawal and refund are open

    services.record_goods_received(withdrawal_id=withdrawal.pk)
    services.inspect_withdrawal(
        withdrawal_id=withdrawal.pk, results=accept_all(withdrawal), by=clerk
    )
    from orders.services.refunds import approve_refunds
    from orders.services.sepa import export_sepa_refunds

    approve_refunds(refund_ids=[withdrawal.refund_id], by=clerk)
    export_sepa_refunds(by=clerk, refund_ids=[withdrawal.refund_id])
    from orders.services.refunds import settle_refunds

    settle_refunds(refund_ids=[withdrawal.refund_id])
    assert run_all()["close_orders"] == 1
    busy.refresh_from_db()
    assert busy.status == "closed"


def test_closing_uses_an_indexed_query(django_assert_max_num_queries):
    """With nothing due, one query finds nothing (the partial index on delivered orders)."""
    with django_assert_max_num_queries(2):
        assert services.close_finished_orders(now=riga(2026, 11, 20)) == 0


@pytest.mark.django_db(transaction=True)
def test_closing_query_plan_uses_the_delivered_index():
    from django.db import connection

    from tests.conftest import on_postgresql

    sql, params = services.orders_to_close(riga(2026, 11, 20)).query.sql_with_params()
    with connection.cursor() as cursor:
        if on_postgresql():
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute("SET enable_seqscan = on")
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = "\n".join(str(row) for row in cursor.fetchall())
    # Either partial index on delivered orders (by delivery time, or by pk for batching).
    assert "order_delivered_idx" in plan or "order_delivered_pk_idx" in plan


# --- Before payment, and the sum of partial withdrawals -------------------------------------


def test_r16_unpaid_order_withdrawn_whole_is_cancelled_and_nothing_refunded():
    from tests.factories import place_test_order

    order = place_test_order([("KEU-001", 1), ("KEU-002", 1)]).order
    withdrawal = withdraw(order)
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert withdrawal.refund is None and withdrawal.refund_amount == Decimal("0.00")
    assert withdrawal.status == WithdrawalStatus.REFUNDED  # nothing left to do


def test_r16_unpaid_order_cannot_be_withdrawn_in_part():
    from tests.factories import place_test_order

    order = place_test_order([("KEU-001", 1), ("KEU-002", 1)]).order
    with pytest.raises(Refused) as refused:
        withdraw(order, [("KEU-001", 1)])
    assert refused.value.code == "partial_withdrawal_before_payment"


def test_r21_line_by_line_withdrawals_refund_exactly_what_was_paid():
    """R21: whatever the order of partial withdrawals, together they refund the total,
    the delivery fee exactly once (with the last one)."""
    order, _ = delivered_order(
        [("KEU-001", 2), ("KEU-002", 1), ("KEU-003", 3)],
        prices={"KEU-001": Decimal("4.35"), "KEU-002": Decimal("7.10"), "KEU-003": Decimal("3.33")},
    )
    assert order.delivery_fee == Decimal("2.00")
    amounts = [
        withdraw(order, [(sku, quantity)], reason=f"{sku}-{i}").refund_amount
        for i, (sku, quantity) in enumerate(
            [("KEU-003", 1), ("KEU-001", 2), ("KEU-003", 2), ("KEU-002", 1)]
        )
    ]
    assert amounts[-1] == Decimal("7.10") + Decimal("2.00")
    assert sum(amounts) == order.total
    assert Refund.objects.filter(order=order).committed_total() == order.total
