"""R32: the one place that says what an order's money is and what may still be refunded.

Every path that gives money back (cancellation, withdrawal, inspection, claim price
reduction or termination, R13, failed delivery, no contact, overpayment) asks
`money_account` under the order lock what each target still holds and records what it
takes with `orders.services.refunds.create_refund(take=...)`. The arithmetic is
`orders.calculations`; this module only reads the rows it needs (three queries: the
lines, the payments' sum, the refunds' allocations per target).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from django.db.models import Sum

from orders.calculations import EXCESS, FEE, MoneyAccount, Target, account
from orders.models import (
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    RefundAllocation,
    RefundStatus,
    RefundTarget,
)
from shop.money import ZERO, to_money

# Lines whose goods the customer still takes (their charge is covered before any other).
TAKEN = (LineStatus.ORDERED, LineStatus.UNAVAILABLE)


def charges_of(order: Order, lines) -> list[tuple[Target, Decimal]]:
    """What the order charges for, in the order money received covers it (R32): the fee,
    the lines still taken, then the lines cancelled since. A replaced line (R13) charges
    nothing: its substitute does. `lines`: the order's lines (objects, any order)."""
    lines = sorted((line for line in lines if line.status != LineStatus.REPLACED), key=_pk)
    taken = [(line.pk, line.line_total) for line in lines if line.status in TAKEN]
    cancelled = [(line.pk, line.line_total) for line in lines if line.status not in TAKEN]
    return [(FEE, order.delivery_fee), *taken, *cancelled]


def _pk(line) -> int:
    return line.pk


def owed_targets(order: Order, lines) -> set[Target]:
    """The targets the customer still owes money for: the fee and the lines still taken
    (a cancelled order owes nothing)."""
    if order.status == OrderStatus.CANCELLED:
        return set()
    return {FEE} | {line.pk for line in lines if line.status in TAKEN}


def open_amount(order: Order, lines, received: Decimal, refunds) -> Decimal:
    """R10, R13 with R32: what the customer still has to pay: the charges still owed that
    the money kept does not cover (a dearer substitute after payment too). `refunds`: the
    order's refunds with their allocations prefetched (no queries)."""
    refunded: dict[Target, Decimal] = {}
    for refund in refunds:
        if refund.status == RefundStatus.FAILED:
            continue
        for row in refund.allocations.all():
            key = target_of(row.target, row.line_id)
            refunded[key] = refunded.get(key, ZERO) + row.amount
    return account(
        received, charges_of(order, lines), refunded, owed=owed_targets(order, lines)
    ).open_amount


def received_total(order: Order) -> Decimal:
    return to_money(Payment.objects.filter(order=order).aggregate(s=Sum("amount"))["s"] or ZERO)


def refunded_per_target(order: Order) -> dict[Target, Decimal]:
    """What the order's refunds (all but failed ones) take from each target."""
    rows = (
        RefundAllocation.objects.filter(refund__order=order)
        .exclude(refund__status=RefundStatus.FAILED)
        .values_list("target", "line_id")
        .annotate(total=Sum("amount"))
    )
    out: dict[Target, Decimal] = {}
    for target, line_id, total in rows:
        key = target_of(target, line_id)
        out[key] = to_money(out.get(key, ZERO) + (total or ZERO))
    return out


def target_of(kind: str, line_id: int | None) -> Target:
    """An allocation row's target: its line's id, or FEE / EXCESS."""
    return line_id if kind == RefundTarget.LINE else kind


def money_account(order: Order) -> MoneyAccount:
    """R32: the order's account. Call it with the order locked when the answer decides a
    refund (`orders.services.locks.lock_order`)."""
    lines = list(OrderLine.objects.filter(order=order).only("pk", "line_total", "status"))
    return account(
        received_total(order),
        charges_of(order, lines),
        refunded_per_target(order),
        owed=owed_targets(order, lines),
    )


def allocation_rows(take: Mapping[Target, Decimal]) -> list[RefundAllocation]:
    """Unsaved allocation rows for `take` (the refund is set by the caller)."""
    rows = []
    for target, amount in take.items():
        if target == FEE:
            rows.append(RefundAllocation(target=RefundTarget.FEE, amount=amount))
        elif target == EXCESS:
            rows.append(RefundAllocation(target=RefundTarget.EXCESS, amount=amount))
        else:
            rows.append(RefundAllocation(target=RefundTarget.LINE, line_id=target, amount=amount))
    return rows


def everything_refundable(money: MoneyAccount, *, keep_fee: bool = False) -> dict[Target, Decimal]:
    """Every target's refundable money (a cancelled order), the fee kept when the shop
    keeps it (T3.4, T5.4)."""
    return {
        target: money.refundable(target)
        for target in money.targets()
        if money.refundable(target) > 0 and not (keep_fee and target == FEE)
    }
