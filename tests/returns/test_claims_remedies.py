"""The remedy hierarchy of conformity claims (R24; T6.5-T6.8), answers (R25), legal hold (R28)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from orders.models import Order, OrderStatus, Refund, RefundReason, RefundStatus
from returns import selectors as returns_selectors
from returns.claims import services
from returns.models.claims import Claim, ClaimDecision, ClaimStatus, DecisionKind
from shop.deadlines import run_all
from shop.errors import InvalidInput, Refused
from shop.models import Product
from tests.returns.claims_support import LV_IBAN, delivered_order, file_claim, make_staff, riga

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(db):
    return make_staff("clerk", "returns.decide_claim")


def only_line(claim: Claim) -> int:
    return claim.lines.get().pk


def refused(code: str, func, **kwargs) -> Refused:
    with pytest.raises(Refused) as exc:
        func(**kwargs)
    assert exc.value.code == code, exc.value.detail
    return exc.value


# --- Each remedy path ----------------------------------------------------------------------


def test_r24_repair_path_free_of_charge(clerk, django_capture_on_commit_callbacks):
    """R24 (T6.6): repair, free: no money moves; the customer is told at each decision."""
    order, _token = delivered_order()
    with django_capture_on_commit_callbacks(execute=True):
        claim = file_claim(order, remedy="repair")
    assert len(mail.outbox) == 1  # the receipt
    services.start_review(claim_id=claim.pk, by=clerk)
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_repair(claim_id=claim.pk, reason="We repair the pump.", by=clerk)
        services.resolve_claim(claim_id=claim.pk, reason="Repaired and sent back.", by=clerk)
    claim = Claim.objects.get(pk=claim.pk)
    assert claim.status == ClaimStatus.RESOLVED
    assert claim.answered_at is not None and claim.closed_at is not None
    assert not Refund.objects.filter(order=order).exists()
    decisions = list(claim.decisions.order_by("decided_at", "pk"))
    assert [d.kind for d in decisions] == ["received", "review", "repair", "resolved"]
    assert decisions[2].decided_by == clerk and decisions[2].reason == "We repair the pump."
    assert decisions[2].from_status == "under_review" and decisions[2].to_status == "repair"
    assert len(mail.outbox) == 3  # receipt, repair, resolved (the review start is internal)
    assert "We repair the pump." in mail.outbox[1].body


def test_r24_replacement_path_with_a_free_outbound_shipment(clerk):
    """R24 (T6.6): replacement is free and ships free: a pending outbound shipment of the
    claimed goods; no fee, the order stays delivered; the unit leaves stock."""
    from delivery.models import Shipment, ShipmentDirection, ShipmentStatus

    order, _token = delivered_order([("KEU-001", 2)])
    stock_before = Product.objects.get(sku="KEU-001").stock
    claim = file_claim(order, [("KEU-001", 1)], remedy="replacement")
    services.decide_replacement(claim_id=claim.pk, reason="A new bottle is sent.", by=clerk)

    claim = Claim.objects.get(pk=claim.pk)
    assert claim.status == ClaimStatus.REPLACEMENT
    shipment = Shipment.objects.get(order=order)
    assert shipment.direction == ShipmentDirection.OUTBOUND
    assert shipment.status == ShipmentStatus.PENDING
    assert shipment.replacement is True and f"claim #{claim.pk}" in shipment.note
    assert [(line["sku"], line["quantity"]) for line in shipment.lines] == [("KEU-001", 1)]
    decision = claim.decisions.get(kind=DecisionKind.REPLACEMENT)
    assert decision.data["shipment_id"] == shipment.pk
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == OrderStatus.DELIVERED
    assert (fresh.total, fresh.delivery_fee) == (order.total, order.delivery_fee)
    assert not Refund.objects.filter(order=order).exists()
    assert Product.objects.get(sku="KEU-001").stock == stock_before - 1


def test_r24_replacement_without_stock_is_refused(clerk):
    order, _token = delivered_order()
    Product.objects.filter(sku="KEU-001").update(stock=0)
    claim = file_claim(order, remedy="replacement")
    refused(
        "replacement_out_of_stock",
        services.decide_replacement,
        claim_id=claim.pk,
        reason="New bottle.",
        by=clerk,
    )
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.SUBMITTED


def test_r24_price_reduction_path_with_refund(clerk, django_capture_on_commit_callbacks):
    """R24 (T6.7): after repair failed, a price reduction is refunded through the orders
    refund service (reason conformity), due 14 calendar days after the decision."""
    order, _token = delivered_order(prices={"KEU-001": Decimal("40.00")})
    claim = file_claim(order, remedy="repair")
    services.decide_repair(claim_id=claim.pk, reason="Pump to be repaired.", by=clerk)
    services.record_obstacle(
        claim_id=claim.pk, kind="failed", reason="The repaired pump leaks again.", by=clerk
    )
    with (
        time_machine.travel(riga(2026, 11, 20, 10, 0), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.decide_price_reduction(
            claim_id=claim.pk,
            amounts={only_line(claim): Decimal("12.50")},
            reason="Agreed with the customer by phone.",
            by=clerk,
        )
    claim = Claim.objects.get(pk=claim.pk)
    assert claim.status == ClaimStatus.PRICE_REDUCTION
    refund = Refund.objects.get(order=order)
    assert refund.amount == Decimal("12.50")
    assert refund.reason == RefundReason.CONFORMITY
    assert refund.status == RefundStatus.READY
    assert refund.due_date.isoformat() == "2026-12-04"
    assert refund.iban == LV_IBAN  # back to the account the money came from
    assert claim.lines.get().refund_amount == Decimal("12.50")
    decision = claim.decisions.get(kind=DecisionKind.PRICE_REDUCTION)
    assert decision.refund == refund and decision.amount == Decimal("12.50")
    assert "12.50 EUR" in mail.outbox[-1].body and "04.12.2026" in mail.outbox[-1].body


def test_r24_termination_refunds_the_line_less_the_allowance(clerk):
    """R24 (T6.7): termination refunds what was paid for the goods less the agreed
    allowance for use; the rest of the order is untouched."""
    order, _token = delivered_order(
        [("KEU-001", 2), ("KEU-002", 1)], prices={"KEU-001": Decimal("25.00")}
    )
    claim = file_claim(order, [("KEU-001", 2)], remedy="termination")
    services.decide_termination(
        claim_id=claim.pk,
        allowances={only_line(claim): Decimal("5.00")},
        reason="Both bottles leak; the customer used some of the product.",
        by=clerk,
        obstacle="impossible",
        obstacle_reason="The product line is discontinued; no repair exists.",
    )
    claim = Claim.objects.get(pk=claim.pk)
    assert claim.status == ClaimStatus.TERMINATION
    refund = Refund.objects.get(order=order)
    assert refund.amount == Decimal("45.00")  # 2 x 25.00 less 5.00
    assert refund.reason == RefundReason.CONFORMITY
    line = claim.lines.get()
    assert (line.allowance, line.refund_amount) == (Decimal("5.00"), Decimal("45.00"))
    assert claim.obstacle == "impossible"
    services.resolve_claim(claim_id=claim.pk, reason="Money refunded.", by=clerk)
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.RESOLVED


def test_r24_allowance_never_more_than_the_price(clerk):
    order, _token = delivered_order()
    claim = file_claim(order, remedy="termination")
    refused(
        "allowance_exceeds_price",
        services.decide_termination,
        claim_id=claim.pk,
        allowances={only_line(claim): Decimal("10.01")},
        reason="x",
        by=clerk,
        obstacle="impossible",
        obstacle_reason="Discontinued.",
    )
    with pytest.raises(InvalidInput):
        services.decide_termination(
            claim_id=claim.pk,
            allowances={only_line(claim): Decimal("-1")},
            reason="x",
            by=clerk,
            obstacle="impossible",
            obstacle_reason="Discontinued.",
        )
    assert not Refund.objects.exists()
    assert Claim.objects.get(pk=claim.pk).obstacle == ""  # rolled back with the refusal


# --- The hierarchy refusals ----------------------------------------------------------------


@pytest.mark.parametrize("decision", ["price_reduction", "termination"])
def test_r24_price_reduction_or_termination_needs_repair_and_replacement_excluded(clerk, decision):
    """R24 (T6.7): without a recorded reason that repair and replacement are impossible,
    disproportionate or failed, price reduction and termination are refused."""
    order, _token = delivered_order()
    claim = file_claim(order, remedy=decision)
    if decision == "price_reduction":
        func, kwargs = services.decide_price_reduction, {"amounts": {only_line(claim): "2.00"}}
    else:
        func, kwargs = services.decide_termination, {}
    refused(
        "repair_or_replacement_first",
        func,
        claim_id=claim.pk,
        reason="The customer asked for it.",
        by=clerk,
        **kwargs,
    )
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.SUBMITTED
    assert not Refund.objects.exists()
    # With the reasons recorded, the same decision goes through.
    services.record_obstacle(
        claim_id=claim.pk,
        kind="disproportionate",
        reason="Shipping a new bottle costs more than the bottle.",
        by=clerk,
    )
    func(claim_id=claim.pk, reason="The customer asked for it.", by=clerk, **kwargs)
    assert Claim.objects.get(pk=claim.pk).status == decision


def test_r24_failed_needs_a_repair_or_replacement_first(clerk):
    order, _token = delivered_order()
    claim = file_claim(order)
    refused(
        "remedy_not_tried",
        services.record_obstacle,
        claim_id=claim.pk,
        kind="failed",
        reason="It failed.",
        by=clerk,
    )


def test_r24_every_decision_needs_a_reason(clerk):
    order, _token = delivered_order()
    claim = file_claim(order)
    with pytest.raises(InvalidInput) as exc:
        services.decide_repair(claim_id=claim.pk, reason="  ", by=clerk)
    assert exc.value.errors[0]["code"] == "required"
    with pytest.raises(InvalidInput):
        services.record_obstacle(claim_id=claim.pk, kind="impossible", reason="", by=clerk)


def test_decisions_on_a_closed_claim_are_refused(clerk):
    order, _token = delivered_order()
    claim = file_claim(order)
    services.reject_claim(claim_id=claim.pk, reason="The bottle was dropped.", by=clerk)
    for func in (services.decide_repair, services.decide_replacement, services.resolve_claim):
        refused("claim_decision_not_allowed", func, claim_id=claim.pk, reason="x", by=clerk)
    refused(
        "claim_decision_not_allowed",
        services.decide_price_reduction,
        claim_id=claim.pk,
        amounts={},
        reason="x",
        by=clerk,
    )


# --- Minor defect and the cap --------------------------------------------------------------


def test_r24_no_termination_for_a_minor_non_conformity(clerk):
    """R24 (T6.8): a minor non-conformity never ends the contract; a price reduction may."""
    order, _token = delivered_order()
    claim = file_claim(order, remedy="termination")
    services.record_obstacle(
        claim_id=claim.pk, kind="impossible", reason="No spare pumps exist.", by=clerk
    )
    services.set_minor_defect(
        claim_id=claim.pk, minor=True, reason="A small scratch on the label only.", by=clerk
    )
    refused(
        "minor_defect_no_termination",
        services.decide_termination,
        claim_id=claim.pk,
        reason="Customer insists.",
        by=clerk,
    )
    assert not Refund.objects.exists()
    services.decide_price_reduction(
        claim_id=claim.pk, amounts={only_line(claim): "1.00"}, reason="For the scratch.", by=clerk
    )
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.PRICE_REDUCTION
    kinds = list(Claim.objects.get(pk=claim.pk).decisions.values_list("kind", flat=True))
    assert "minor_defect" in kinds


def test_r24_price_reduction_never_more_than_paid_for_the_line(clerk):
    """R24 (T6.7): at most what was paid for the claimed goods."""
    order, _token = delivered_order([("KEU-001", 3)], prices={"KEU-001": Decimal("10.00")})
    claim = file_claim(order, [("KEU-001", 1)], remedy="price_reduction")
    error = refused(
        "price_reduction_exceeds_paid",
        services.decide_price_reduction,
        claim_id=claim.pk,
        amounts={only_line(claim): Decimal("10.01")},
        reason="x",
        by=clerk,
        obstacle="disproportionate",
        obstacle_reason="Cheaper to reduce.",
    )
    assert error.facts["cap"] == "10.00"
    services.decide_price_reduction(
        claim_id=claim.pk,
        amounts={only_line(claim): Decimal("10.00")},
        reason="Full price of the one bottle.",
        by=clerk,
        obstacle="disproportionate",
        obstacle_reason="Cheaper to reduce.",
    )
    assert Refund.objects.get(order=order).amount == Decimal("10.00")


def test_r24_cap_across_several_claims_on_the_same_line(clerk):
    """R24: two claims on the same line together never get back more than the line cost."""
    order, _token = delivered_order([("KEU-001", 2)], prices={"KEU-001": Decimal("10.00")})
    first = file_claim(order, [("KEU-001", 2)], remedy="price_reduction")
    services.decide_price_reduction(
        claim_id=first.pk,
        amounts={only_line(first): Decimal("15.00")},
        reason="Both bottles scratched.",
        by=clerk,
        obstacle="disproportionate",
        obstacle_reason="Cheaper to reduce.",
    )
    second = file_claim(order, [("KEU-001", 1)], remedy="price_reduction")
    services.record_obstacle(
        claim_id=second.pk, kind="disproportionate", reason="Same as before.", by=clerk
    )
    error = refused(
        "price_reduction_exceeds_paid",
        services.decide_price_reduction,
        claim_id=second.pk,
        amounts={only_line(second): Decimal("5.01")},
        reason="x",
        by=clerk,
    )
    assert error.facts["cap"] == "5.00"
    assert error.facts["already_paid_back"] == "15.00"
    services.decide_price_reduction(
        claim_id=second.pk, amounts={only_line(second): "5.00"}, reason="The rest.", by=clerk
    )
    third = file_claim(order, [("KEU-001", 1)], remedy="termination")
    services.decide_termination(
        claim_id=third.pk,
        reason="Leaks.",
        by=clerk,
        obstacle="impossible",
        obstacle_reason="Discontinued.",
    )
    # Nothing is left of the line: the termination refunds nothing more.
    assert Refund.objects.filter(order=order).count() == 2
    assert sum(r.amount for r in Refund.objects.filter(order=order)) == Decimal("20.00")
    assert Claim.objects.get(pk=third.pk).lines.get().refund_amount == Decimal("0.00")


# --- Answer deadline and the overdue flag (R25) --------------------------------------------


def test_r25_run_deadlines_flags_overdue_unanswered_claims_once(clerk):
    """R25: a claim not answered by the end of its answer deadline is flagged by
    run_deadlines; answered claims are not; a second run changes nothing."""
    order, _token = delivered_order(delivered_at=riga(2026, 11, 2, 12, 0))
    with time_machine.travel(riga(2026, 11, 20, 16, 0), tick=False):
        late = file_claim(order)
        answered = file_claim(order)
        services.decide_repair(claim_id=answered.pk, reason="Repair.", by=clerk)
    assert run_all(now=riga(2026, 12, 11, 23, 59))["overdue_claims"] == 0
    report = run_all(now=riga(2026, 12, 12, 0, 1))
    assert report["overdue_claims"] == 1
    assert Claim.objects.get(pk=late.pk).overdue_flagged_at == riga(2026, 12, 12, 0, 1)
    assert Claim.objects.get(pk=answered.pk).overdue_flagged_at is None
    assert run_all(now=riga(2026, 12, 13, 0, 0))["overdue_claims"] == 0


def test_r25_the_overdue_query_uses_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        services.flag_overdue_claims(now=timezone.now())


# --- Legal hold (R28) ----------------------------------------------------------------------


def test_r28_an_open_claim_puts_the_order_under_legal_hold(clerk):
    order, _token = delivered_order()
    other, _ = delivered_order([("KEU-002", 1)])
    assert not returns_selectors.order_has_open_claim(order.pk)
    claim = file_claim(order)
    assert returns_selectors.order_has_open_claim(order.pk)
    assert list(returns_selectors.orders_with_open_claims()) == [order.pk]
    assert (
        Order.objects.exclude(pk__in=returns_selectors.orders_with_open_claims())
        .filter(pk=other.pk)
        .exists()
    )
    services.decide_repair(claim_id=claim.pk, reason="Repair.", by=clerk)
    assert returns_selectors.order_has_open_claim(order.pk)
    services.resolve_claim(claim_id=claim.pk, reason="Done.", by=clerk)
    assert not returns_selectors.order_has_open_claim(order.pk)
    assert Claim.objects.get(pk=claim.pk).closed_at is not None


def test_staff_entered_claim_keeps_the_time_received(clerk):
    """T6.9: an oral claim entered later keeps the time it was received, which starts the
    answer deadline."""
    order, _token = delivered_order(delivered_at=riga(2026, 11, 2, 12, 0))
    with time_machine.travel(riga(2026, 11, 23, 9, 0), tick=False):
        claim = file_claim(
            order,
            channel="oral",
            received_at=riga(2026, 11, 20, 16, 0),
            entered_by=clerk,
            discovered_on=riga(2026, 11, 19, 0, 0).date(),
        )
    assert claim.channel == "oral"
    assert claim.entered_by == clerk
    assert claim.answer_deadline == riga(2026, 12, 11, 23, 59, 59, 999999)
    received = ClaimDecision.objects.get(claim=claim, kind="received")
    assert received.decided_by == clerk and received.decided_at == riga(2026, 11, 20, 16, 0)
    with pytest.raises(InvalidInput):
        file_claim(order, channel="paper", received_at=timezone.now() + timedelta(hours=2))


def test_r28_claims_are_registered_with_legal_holds_and_the_ledger(clerk):
    """R28: legal.holds sees an open claim (the retention sweep postpones erasure) and, once
    closed, a closed hold that keeps the data 3 years from closing; the ledger is
    recomputed when the claim opens and closes."""
    from legal import holds
    from legal.models import PersonalDataRecord

    order, _token = delivered_order()
    claim = file_claim(order)
    [hold] = holds.holds_for([order.pk])[order.pk]
    assert hold.is_open and hold.reason == f"conformity claim #{claim.pk}"
    assert order.pk in holds.open_hold_order_ids()
    record = PersonalDataRecord.objects.get(order=order, category="claims")
    assert record.keep_until is None  # held while the claim is open
    services.reject_claim(claim_id=claim.pk, reason="Not a defect.", by=clerk)
    [hold] = holds.holds_for([order.pk])[order.pk]
    assert not hold.is_open and hold.closed_at == Claim.objects.get(pk=claim.pk).closed_at
    assert order.pk not in holds.open_hold_order_ids()
    record = PersonalDataRecord.objects.get(order=order, category="claims")
    assert record.keep_until is not None
    assert record.keep_until.year >= riga(2029, 1, 1).year  # 3 years after closing
