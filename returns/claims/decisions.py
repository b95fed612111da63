"""Staff decisions on conformity claims (R24, R25; T6.5-T6.8).

Each decision is recorded with who, when and why (`ClaimDecision`) and the customer is
emailed: `start_review` (internal, no email), `decide_repair`, `decide_replacement` (the
units leave stock; a free outbound shipment), `record_obstacle` (repair and replacement
impossible, disproportionate or failed; internal), `set_minor_defect` (internal),
`resolve_claim`, `reject_claim`.

Price reduction and termination, which move money, are in `returns.claims.money`.

Locks: the order row first, then the claim row, always in this order (refunds lock the
order too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from orders.services.locks import lock_order, lock_products_by_id
from returns.claims import emails
from returns.claims.holds import refresh_ledger
from returns.claims.receiving import check_choice
from returns.claims.shipments import create_free_replacement_shipment
from returns.models.claims import (
    Claim,
    ClaimDecision,
    ClaimLine,
    ClaimStatus,
    DecisionKind,
    ObstacleKind,
)
from shop.errors import InvalidInput, Refused

# Decisions the customer is told about by email (the others are internal assessments).
EMAILED_DECISIONS = {
    DecisionKind.REPAIR,
    DecisionKind.REPLACEMENT,
    DecisionKind.PRICE_REDUCTION,
    DecisionKind.TERMINATION,
    DecisionKind.RESOLVED,
    DecisionKind.REJECTED,
}


def locked_claim(claim_id: int) -> Claim:
    """Lock the claim's order, then the claim (fixed order); inside a transaction."""
    order_id = Claim.objects.filter(pk=claim_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise Refused("no_such_claim", _("There is no such claim."), claim=claim_id)
    lock_order(order_id)
    return Claim.objects.select_for_update().select_related("order").get(pk=claim_id)


def require_reason(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput.single(
            field, "required", _("Say why: every decision is recorded with its reason.")
        )
    return reason


def check_source(claim: Claim, method: Callable, kind: str) -> None:
    if not can_proceed(method, check_conditions=False):
        raise Refused(
            "claim_decision_not_allowed",
            _("This decision is not possible while the claim is %(status)s.")
            % {"status": claim.get_status_display()},
            status=claim.status,
            decision=kind,
        )


def record_decision(
    claim: Claim,
    *,
    kind: str,
    from_status: str,
    reason: str,
    by,
    at: datetime,
    amount: Decimal | None = None,
    refund=None,
    data: dict | None = None,
) -> ClaimDecision:
    decision = ClaimDecision.objects.create(
        claim=claim,
        kind=kind,
        from_status=from_status,
        to_status=claim.status,
        reason=reason,
        decided_by=by,
        decided_at=at,
        amount=amount,
        refund=refund,
        data=data or {},
    )
    if kind in EMAILED_DECISIONS:
        emails.claim_decided(claim=claim, decision=decision)
    return decision


def _decide(
    claim_id: int,
    *,
    kind: str,
    method_name: str,
    reason: str,
    by,
    effects: Callable[[Claim, datetime], dict] | None = None,
) -> Claim:
    """A decision that only moves the state (and runs `effects` under the same locks)."""
    reason = require_reason(reason) if kind != DecisionKind.REVIEW else (reason or "").strip()
    now = timezone.now()
    with transaction.atomic():
        claim = locked_claim(claim_id)
        method = getattr(claim, method_name)
        check_source(claim, method, kind)
        from_status = claim.status
        data = effects(claim, now) if effects else {}
        method(at=now)
        claim.save()
        record_decision(
            claim, kind=kind, from_status=from_status, reason=reason, by=by, at=now, data=data
        )
        if not claim.is_open:
            refresh_ledger(claim.order_id)  # R28: the hold now runs 3 years from closing
    return claim


def start_review(*, claim_id: int, by, reason: str = "") -> Claim:
    """Staff take the claim up (no email: the answer is the decision that follows)."""
    return _decide(
        claim_id, kind=DecisionKind.REVIEW, method_name="start_review", reason=reason, by=by
    )


def decide_repair(*, claim_id: int, reason: str, by) -> Claim:
    """R24 (T6.6): repair, free of charge."""
    return _decide(
        claim_id, kind=DecisionKind.REPAIR, method_name="decide_repair", reason=reason, by=by
    )


def decide_replacement(*, claim_id: int, reason: str, by) -> Claim:
    """R24 (T6.6): replacement, free of charge: the replacement goods leave stock and a
    free outbound shipment is created for them."""

    def ship_replacement(claim: Claim, now: datetime) -> dict:
        lines = list(claim.lines.select_related("order_line").order_by("pk"))
        _take_replacement_stock(lines)
        return {"shipment_id": create_free_replacement_shipment(claim=claim, lines=lines, by=by)}

    return _decide(
        claim_id,
        kind=DecisionKind.REPLACEMENT,
        method_name="decide_replacement",
        reason=reason,
        by=by,
        effects=ship_replacement,
    )


def _take_replacement_stock(lines: Sequence[ClaimLine]) -> None:
    """The replacement units come out of stock (products locked in SKU order, R8)."""
    needed: dict[int, int] = {}
    for line in lines:
        needed[line.order_line.product_id] = needed.get(line.order_line.product_id, 0) + (
            line.quantity
        )
    products = lock_products_by_id(needed)
    short = sorted(p.sku for pid, p in products.items() if p.stock < needed[pid])
    if short:
        raise Refused(
            "replacement_out_of_stock",
            _(
                "Not enough stock for a replacement; if none can be had, record that "
                "replacement is impossible."
            ),
            skus=short,
        )
    for pid, product in products.items():
        product.stock -= needed[pid]
        product.save(update_fields=["stock", "updated_at"])


def record_obstacle(*, claim_id: int, kind: ObstacleKind | str, reason: str, by) -> Claim:
    """R24 (T6.6, T6.7): staff record why repair and replacement are impossible,
    disproportionate or have failed; only then may price reduction or termination follow."""
    check_choice("obstacle", kind, ObstacleKind)
    reason = require_reason(reason)
    now = timezone.now()
    with transaction.atomic():
        claim = locked_claim(claim_id)
        record_obstacle_on(claim, kind=kind, reason=reason, by=by, at=now)
    return claim


def record_obstacle_on(claim: Claim, *, kind: str, reason: str, by, at: datetime) -> None:
    if claim.status not in (
        ClaimStatus.SUBMITTED,
        ClaimStatus.UNDER_REVIEW,
        ClaimStatus.REPAIR,
        ClaimStatus.REPLACEMENT,
    ):
        raise Refused(
            "claim_decision_not_allowed",
            _("This decision is not possible while the claim is %(status)s.")
            % {"status": claim.get_status_display()},
            status=claim.status,
            decision=DecisionKind.OBSTACLE,
        )
    if (
        kind == ObstacleKind.FAILED
        and not claim.decisions.filter(
            kind__in=[DecisionKind.REPAIR, DecisionKind.REPLACEMENT]
        ).exists()
    ):
        raise Refused(
            "remedy_not_tried",
            _("Repair or replacement can only have failed after one of them was decided."),
            status=claim.status,
        )
    claim.obstacle = kind
    claim.obstacle_reason = reason
    claim.save(update_fields=["obstacle", "obstacle_reason"])
    record_decision(
        claim,
        kind=DecisionKind.OBSTACLE,
        from_status=claim.status,
        reason=reason,
        by=by,
        at=at,
        data={"obstacle": str(kind)},
    )


def set_minor_defect(*, claim_id: int, minor: bool, reason: str, by) -> Claim:
    """R24 (T6.8): staff assess whether the non-conformity is minor (no termination then)."""
    reason = require_reason(reason)
    now = timezone.now()
    with transaction.atomic():
        claim = locked_claim(claim_id)
        if not claim.is_open or claim.status == ClaimStatus.TERMINATION:
            raise Refused(
                "claim_decision_not_allowed",
                _("This decision is not possible while the claim is %(status)s.")
                % {"status": claim.get_status_display()},
                status=claim.status,
                decision=DecisionKind.MINOR_DEFECT,
            )
        claim.minor_defect = bool(minor)
        claim.save(update_fields=["minor_defect"])
        record_decision(
            claim,
            kind=DecisionKind.MINOR_DEFECT,
            from_status=claim.status,
            reason=reason,
            by=by,
            at=now,
            data={"minor_defect": bool(minor)},
        )
    return claim


def resolve_claim(*, claim_id: int, reason: str, by) -> Claim:
    """The remedy was carried out (repaired, replaced, money refunded): the claim closes."""
    return _decide(
        claim_id, kind=DecisionKind.RESOLVED, method_name="resolve", reason=reason, by=by
    )


def reject_claim(*, claim_id: int, reason: str, by) -> Claim:
    """The goods conform (or the defect is not the shop's responsibility): the reason is
    sent to the customer."""
    return _decide(claim_id, kind=DecisionKind.REJECTED, method_name="reject", reason=reason, by=by)


# --- Deadlines (R25) ---------------------------------------------------------------------


def flag_overdue_claims(*, now: datetime) -> int:
    """R25: claims not answered by the end of their answer deadline are flagged (once).

    Uses the partial index on unanswered, unflagged claims: cheap when nothing is due.
    """
    return Claim.objects.filter(
        status__in=[ClaimStatus.SUBMITTED, ClaimStatus.UNDER_REVIEW],
        overdue_flagged_at__isnull=True,
        answer_deadline__lt=now,
    ).update(overdue_flagged_at=now)
