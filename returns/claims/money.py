"""Price reduction and termination (R24; T6.7, T6.8): the remedies that move money.

Only once staff recorded why repair and replacement are impossible, disproportionate or
have failed (`repair_or_replacement_first` otherwise); termination never for a minor
non-conformity. A price reduction never exceeds what was paid for the claimed goods nor,
with earlier claims on the same order line, what is left of the line; termination
refunds the goods' price less the agreed allowance for use (at most the price). The money
goes through `orders.services.refunds.create_refund` (reason `conformity`), due 14
calendar days after the decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from orders.models import RefundReason
from orders.services.account import money_account
from orders.services.refunds import create_refund
from returns.claims import rules as claim_rules
from returns.claims.decisions import (
    check_source,
    locked_claim,
    record_decision,
    record_obstacle_on,
    require_reason,
)
from returns.claims.receiving import check_choice
from returns.models.claims import Claim, ClaimLine, DecisionKind, ObstacleKind
from shop.calendar import riga_date
from shop.errors import InvalidInput, Refused
from shop.money import ZERO, money_sum, to_money


def _money_per_line(
    values: Mapping[int, Decimal | str | int], claim: Claim, field: str
) -> dict[int, Decimal]:
    """Amounts keyed by claim line id: known lines only, never negative."""
    line_ids = set(claim.lines.values_list("pk", flat=True))
    amounts: dict[int, Decimal] = {}
    for key, raw in values.items():
        if not str(key).isdigit() or int(key) not in line_ids:
            raise InvalidInput.single(field, "unknown_line", _("Not a line of this claim."))
        try:
            amount = to_money(raw if raw not in (None, "") else ZERO)
        except (ValueError, TypeError) as exc:
            raise InvalidInput.single(field, "invalid", _("Not an amount of money.")) from exc
        if amount < 0:
            raise InvalidInput.single(field, "negative", _("Amounts cannot be negative."))
        amounts[int(key)] = amount
    return amounts


def _check_hierarchy(claim: Claim, kind: str) -> None:
    """R24 (T6.7): price reduction or termination only when repair and replacement are
    impossible, disproportionate or failed, as staff recorded with their reasons."""
    if not claim.primary_remedy_excluded():
        raise Refused(
            "repair_or_replacement_first",
            _(
                "Repair or replacement come first: record why they are impossible, "
                "disproportionate or have failed before a price reduction or termination."
            ),
            status=claim.status,
            decision=kind,
        )


def _paid_back(claim: Claim, lines: list[ClaimLine]) -> dict[int, Decimal]:
    """R24 with R32: what is no longer left of each claimed order line's payment, counting
    every refund that took from the line (withdrawals, earlier claims, R13), not only claim
    refunds; a line never gives back more than was paid for it (the order is locked)."""
    money = money_account(claim.order)
    return {
        line.order_line_id: line.order_line.line_total - money.refundable(line.order_line_id)
        for line in lines
    }


def _refund(claim: Claim, *, take: dict[int, Decimal], note: str, now: datetime):
    take = {line_id: amount for line_id, amount in take.items() if amount > 0}
    if not take:
        return None
    return create_refund(
        order_id=claim.order_id,
        take=take,
        reason=RefundReason.CONFORMITY,
        due_date=claim_rules.claim_refund_due_date(riga_date(now)),
        iban=claim.refund_iban or None,
        account_holder=claim.refund_account_holder or None,
        note=note[:300],
    )


def _per_order_line(lines: list[ClaimLine], amounts: dict[int, Decimal]) -> dict[int, Decimal]:
    """Claim line amounts summed per order line: what the refund takes from each (R32)."""
    take: dict[int, Decimal] = {}
    for line in lines:
        take[line.order_line_id] = take.get(line.order_line_id, ZERO) + amounts.get(line.pk, ZERO)
    return take


def decide_price_reduction(
    *,
    claim_id: int,
    amounts: Mapping[int, Decimal | str],
    reason: str,
    by,
    obstacle: ObstacleKind | str = "",
    obstacle_reason: str = "",
) -> Claim:
    """R24 (T6.7): reduce the price of the claimed goods by `amounts` (claim line id ->
    amount) and refund it. Never more than what was paid for the line, also counting what
    earlier claims paid back for it. `obstacle` and `obstacle_reason` record the reason
    repair and replacement are excluded in the same step, when not recorded before."""
    reason = require_reason(reason)
    if obstacle:
        check_choice("obstacle", obstacle, ObstacleKind)
        obstacle_reason = require_reason(obstacle_reason, "obstacle_reason")
    now = timezone.now()
    with transaction.atomic():
        claim = locked_claim(claim_id)
        check_source(claim, claim.decide_price_reduction, DecisionKind.PRICE_REDUCTION)
        if obstacle:
            record_obstacle_on(claim, kind=obstacle, reason=obstacle_reason, by=by, at=now)
        _check_hierarchy(claim, DecisionKind.PRICE_REDUCTION)
        per_line = _money_per_line(amounts, claim, "amounts")
        total = money_sum(per_line.values())
        if total <= 0:
            raise InvalidInput.single(
                "amounts", "required", _("Give the amount of the price reduction.")
            )
        lines = list(claim.lines.select_related("order_line").order_by("pk"))
        paid_back = _paid_back(claim, lines)
        details = []
        for line in lines:
            amount = per_line.get(line.pk, ZERO)
            cap = claim_rules.price_reduction_cap(
                unit_price=line.order_line.unit_price,
                quantity=line.quantity,
                line_total=line.order_line.line_total,
                already_paid_back=paid_back.get(line.order_line_id, ZERO),
            )
            if amount > cap:
                raise Refused(
                    "price_reduction_exceeds_paid",
                    _("A price reduction cannot exceed what was paid for the line."),
                    sku=line.order_line.sku,
                    requested=str(amount),
                    cap=str(cap),
                    already_paid_back=str(paid_back.get(line.order_line_id, ZERO)),
                )
            line.refund_amount = to_money(line.refund_amount + amount)
            details.append({"sku": line.order_line.sku, "amount": str(amount), "cap": str(cap)})
        from_status = claim.status
        claim.decide_price_reduction(at=now)
        claim.save()
        ClaimLine.objects.bulk_update(lines, ["refund_amount"])
        refund = _refund(
            claim,
            take=_per_order_line(lines, {line.pk: per_line.get(line.pk, ZERO) for line in lines}),
            note=f"Conformity claim #{claim.pk}: price reduction",
            now=now,
        )
        record_decision(
            claim,
            kind=DecisionKind.PRICE_REDUCTION,
            from_status=from_status,
            reason=reason,
            by=by,
            at=now,
            amount=total,
            refund=refund,
            data={"lines": details},
        )
    return claim


def decide_termination(
    *,
    claim_id: int,
    reason: str,
    by,
    allowances: Mapping[int, Decimal | str] | None = None,
    obstacle: ObstacleKind | str = "",
    obstacle_reason: str = "",
) -> Claim:
    """R24 (T6.7, T6.8): terminate the contract for the claimed goods and refund their
    price less the agreed allowance for use (`allowances`: claim line id -> amount, each
    at most the price). Refused for a minor non-conformity."""
    reason = require_reason(reason)
    if obstacle:
        check_choice("obstacle", obstacle, ObstacleKind)
        obstacle_reason = require_reason(obstacle_reason, "obstacle_reason")
    now = timezone.now()
    with transaction.atomic():
        claim = locked_claim(claim_id)
        check_source(claim, claim.decide_termination, DecisionKind.TERMINATION)
        if claim.minor_defect:
            raise Refused(
                "minor_defect_no_termination",
                _("The contract cannot be terminated for a minor non-conformity (T6.8)."),
                status=claim.status,
            )
        if obstacle:
            record_obstacle_on(claim, kind=obstacle, reason=obstacle_reason, by=by, at=now)
        _check_hierarchy(claim, DecisionKind.TERMINATION)
        per_line = _money_per_line(allowances or {}, claim, "allowances")
        lines = list(claim.lines.select_related("order_line").order_by("pk"))
        paid_back = _paid_back(claim, lines)
        details = []
        amounts: dict[int, Decimal] = {}
        for line in lines:
            allowance = per_line.get(line.pk, ZERO)
            price = claim_rules.goods_price(
                unit_price=line.order_line.unit_price, quantity=line.quantity
            )
            if not claim_rules.allowance_valid(
                allowance=allowance, unit_price=line.order_line.unit_price, quantity=line.quantity
            ):
                raise Refused(
                    "allowance_exceeds_price",
                    _("The allowance for use cannot exceed the price of the goods."),
                    sku=line.order_line.sku,
                    allowance=str(allowance),
                    price=str(price),
                )
            amount = claim_rules.termination_refund(
                unit_price=line.order_line.unit_price,
                quantity=line.quantity,
                allowance=allowance,
                line_total=line.order_line.line_total,
                already_paid_back=paid_back.get(line.order_line_id, ZERO),
            )
            line.allowance = allowance
            line.refund_amount = to_money(line.refund_amount + amount)
            amounts[line.pk] = amount
            details.append(
                {
                    "sku": line.order_line.sku,
                    "price": str(price),
                    "allowance": str(allowance),
                    "refund": str(amount),
                }
            )
        total = money_sum(to_money(d["refund"]) for d in details)
        from_status = claim.status
        claim.decide_termination(at=now)
        claim.save()
        ClaimLine.objects.bulk_update(lines, ["allowance", "refund_amount"])
        refund = _refund(
            claim,
            take=_per_order_line(lines, amounts),
            note=f"Conformity claim #{claim.pk}: termination",
            now=now,
        )
        record_decision(
            claim,
            kind=DecisionKind.TERMINATION,
            from_status=from_status,
            reason=reason,
            by=by,
            at=now,
            amount=total,
            refund=refund,
            data={"lines": details},
        )
    return claim
