"""The money of conformity remedies (R24, T6.7), pure: no database.

The period, notice and answer deadline arithmetic lives in `returns.rules`
(`conformity_period_end`, `warranty_end`, `notice_is_late`, `claim_answer_deadline`).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from shop.money import ZERO, to_money

CLAIM_REFUND_DAYS = 14  # our choice: refunds of a claim are due 14 calendar days after the decision


def goods_price(*, unit_price: Decimal, quantity: int) -> Decimal:
    """What was paid for the claimed goods: the copied unit price times the quantity (R2)."""
    return to_money(to_money(unit_price) * quantity)


def line_room(*, line_total: Decimal, already_paid_back: Decimal) -> Decimal:
    """What is left of the order line after earlier claims paid part of it back."""
    return max(ZERO, to_money(line_total) - to_money(already_paid_back))


def price_reduction_cap(
    *, unit_price: Decimal, quantity: int, line_total: Decimal, already_paid_back: Decimal
) -> Decimal:
    """R24 (T6.7): a price reduction never exceeds what was paid for the line: neither the
    price of the claimed goods nor, with earlier claims on the same line, what is left."""
    return min(
        goods_price(unit_price=unit_price, quantity=quantity),
        line_room(line_total=line_total, already_paid_back=already_paid_back),
    )


def termination_refund(
    *,
    unit_price: Decimal,
    quantity: int,
    allowance: Decimal,
    line_total: Decimal,
    already_paid_back: Decimal,
) -> Decimal:
    """R24 (T6.7): termination refunds the price of the goods less the agreed allowance
    for use (the caller checks the allowance is between 0 and the price), never more than
    is left of the line after earlier claims."""
    price = goods_price(unit_price=unit_price, quantity=quantity)
    return min(
        max(ZERO, price - to_money(allowance)),
        line_room(line_total=line_total, already_paid_back=already_paid_back),
    )


def allowance_valid(*, allowance: Decimal, unit_price: Decimal, quantity: int) -> bool:
    """R24 (T6.7): an allowance for use is never negative and never more than the price."""
    allowance = to_money(allowance)
    return ZERO <= allowance <= goods_price(unit_price=unit_price, quantity=quantity)


def claim_refund_due_date(decided_on: date) -> date:
    """Our choice: the rules set no fixed date for the money of a price reduction or a
    termination, so it is due 14 calendar days after the decision, as withdrawal refunds
    are after the statement (R21)."""
    return decided_on + timedelta(days=CLAIM_REFUND_DAYS)
