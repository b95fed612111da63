"""Delivery rules as arithmetic, pure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from shop.calendar import LatvianCalendar
from shop.money import ZERO, to_money


def delivery_fee(*, goods_total: Decimal, fee: Decimal, free_above: Decimal) -> Decimal:
    """R6 (T5.2): the fee when the goods total is at most the threshold; free above it.

    Exactly EUR 50.00 pays the fee; EUR 50.01 ships free.
    """
    return ZERO if to_money(goods_total) > to_money(free_above) else to_money(fee)


def estimated_delivery(*, paid_on: date, calendar: LatvianCalendar) -> tuple[date, date]:
    """R7 (T5.3): 1-2 working days after the day payment is confirmed."""
    return calendar.add_working_days(paid_on, 1), calendar.add_working_days(paid_on, 2)
