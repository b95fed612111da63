"""The law of withdrawals and conformity claims as arithmetic: pure, no database.

Citations: T = the shop's terms (seeds/002), CRD = Directive 2011/83/EU as amended by
Directive (EU) 2023/2673, SGD = Directive (EU) 2019/771, Reg 1182/71 = computing periods.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

# R16: the period itself is computed in one place, `orders.rules` (the order's own
# representation shows its end too); re-exported here for the law of withdrawals.
from orders.rules import WITHDRAWAL_DAYS as WITHDRAWAL_DAYS
from orders.rules import withdrawal_period_end as withdrawal_period_end
from shop.calendar import LatvianCalendar, end_of_day, riga_date
from shop.money import ZERO, to_money

RETURN_DAYS = 14  # R20 (T7.4, CRD Art 14(1))
REFUND_DAYS = 14  # R21 (T7.6, CRD Art 13(1))
CONFORMITY_YEARS = 2  # R23 (T6.3, SGD Art 10(1), PTAL)
NOTICE_MONTHS = 2  # R23 (SGD Art 12, PTAL): notice within 2 months of discovery
ANSWER_WORKING_DAYS = 15  # R25 (PTAL)


# --- Withdrawal (R16-R22) ---------------------------------------------------------------


def statement_in_time(
    *, received_at: datetime, delivered_at: datetime | None, calendar: LatvianCalendar
) -> tuple[bool, datetime | None]:
    """R16 (T7.3, CRD Art 9(3), 11(2)): a statement counts if received before the end of
    the period; before delivery it is always in time. Returns (in_time, period_end)."""
    if delivered_at is None:
        return True, None
    end = withdrawal_period_end(delivered_at, calendar)
    return received_at <= end, end


def return_deadline(received_at: datetime, calendar: LatvianCalendar) -> datetime:
    """R20 (T7.4, CRD Art 14(1)): the goods are sent back within 14 days after the
    statement; computed like every period (R0.4), which never shortens it."""
    return calendar.period_end(riga_date(received_at), RETURN_DAYS)


def refund_due_date(received_at: datetime) -> date:
    """R21 (T7.6, CRD Art 13(1)): at the latest 14 calendar days after the statement was
    received. The shop's own deadline is not extended to a working day."""
    return riga_date(received_at) + timedelta(days=REFUND_DAYS)


def refund_held(*, goods_received: bool, proof_of_dispatch: bool, delivered: bool) -> bool:
    """R21 (T7.7, CRD Art 13(3)): the shop may hold the refund until the goods arrive or
    proof of dispatch is given, whichever comes first. Goods never delivered need no
    return, so nothing holds the refund."""
    if not delivered:
        return False
    return not (goods_received or proof_of_dispatch)


@dataclass(frozen=True)
class WithdrawnLine:
    """A withdrawn quantity of an order line, with the inspection outcome (R22)."""

    unit_price: Decimal
    quantity: int
    deduction: Decimal = ZERO  # accepted_with_deduction: diminished value, capped
    rejected: bool = False

    @property
    def price(self) -> Decimal:
        return to_money(self.unit_price * self.quantity)


def capped_deduction(*, deduction: Decimal, line_price: Decimal) -> Decimal:
    """R22 (T7.11, CRD Art 14(2)): a deduction for diminished value is never more than
    the line's price, and never negative."""
    return min(max(to_money(deduction), ZERO), to_money(line_price))


def covers_whole_order(
    *, withdrawn: dict[int, int], earlier: dict[int, int], ordered: dict[int, int]
) -> bool:
    """R21: do this withdrawal and the earlier ones together cover every line of the order
    in full? Keys are order-line ids, values quantities."""
    for line_id, quantity in ordered.items():
        if withdrawn.get(line_id, 0) + earlier.get(line_id, 0) < quantity:
            return False
    return True


def withdrawal_refund_amount(
    *,
    lines: Iterable[WithdrawnLine],
    delivery_fee: Decimal,
    covers_whole_order: bool,
) -> Decimal:
    """R21 (T7.6, CRD Art 13(1)): everything paid for the withdrawn goods, plus the delivery
    fee when the withdrawals together cover every line of the order; less the deductions
    of R22 (a rejected line is not refunded)."""
    total = ZERO
    for line in lines:
        if line.rejected:
            continue
        total += line.price - capped_deduction(deduction=line.deduction, line_price=line.price)
    if covers_whole_order:
        total += to_money(delivery_fee)
    return to_money(total)


def returned_late(*, goods_received_at: datetime, deadline: datetime) -> bool:
    """R22 (T7.10): goods back after the return deadline are flagged for staff."""
    return goods_received_at > deadline


# --- Conformity claims (R23-R25) ---------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it has no such day."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def conformity_period_end(delivered_at: datetime) -> datetime:
    """R23 (T6.3, SGD Art 10(1)): two years from receiving the goods, to the day, ending at
    the end of that day in Riga."""
    return end_of_day(add_months(riga_date(delivered_at), 12 * CONFORMITY_YEARS))


def warranty_end(delivered_at: datetime, warranty_months: int | None) -> datetime | None:
    """R23 (T6.4): the product's commercial warranty, if it has one."""
    if not warranty_months:
        return None
    return end_of_day(add_months(riga_date(delivered_at), warranty_months))


def notice_is_late(*, discovered_on: date, notified_at: datetime) -> bool:
    """R23 (SGD Art 12, PTAL): notice more than 2 months after discovering the defect is
    flagged for staff, never refused (the terms' "2 working days" cannot bind a consumer)."""
    return riga_date(notified_at) > add_months(discovered_on, NOTICE_MONTHS)


def claim_answer_deadline(received_at: datetime, calendar: LatvianCalendar) -> datetime:
    """R25 (PTAL): staff answer within 15 working days of the claim."""
    return calendar.working_days_end(riga_date(received_at), ANSWER_WORKING_DAYS)
