"""Order clocks as arithmetic, pure: dates in, dates out, no database (R0.2-R0.4).

The withdrawal period lives here, below `returns`, because the order's own representation
(API, pages, emails) shows its end; `returns.rules` and every other caller ask this module.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shop.calendar import LatvianCalendar, end_of_day, riga_date

WITHDRAWAL_DAYS = 14  # R16 (T7.1, CRD Art 9(1))


def withdrawal_period_end(delivered_at: datetime, calendar: LatvianCalendar) -> datetime:
    """R16 (T7.1, CRD Art 9(2)(b), Reg 1182/71 Art 3, R0.4): 14 calendar days from the day
    after the customer takes possession of the goods (the delivery of the last outbound
    parcel of the order's goods, `Order.delivered_at`); a last day off rolls to the next
    working day; the period ends at the end of that day in Riga."""
    return calendar.period_end(riga_date(delivered_at), WITHDRAWAL_DAYS)


def withdrawal_deadline(
    *, is_consumer: bool, delivered_at: datetime | None, calendar: LatvianCalendar
) -> datetime | None:
    """R15, R16: the end of the withdrawal period; None for a business buyer (R15) and
    before the last parcel is delivered (the customer may withdraw at any time then,
    CRD Art 9(3))."""
    if not is_consumer or delivered_at is None:
        return None
    return withdrawal_period_end(delivered_at, calendar)


def statement_grace_cutoff(now: datetime, calendar: LatvianCalendar, grace: int) -> datetime:
    """R10, R12: the latest deadline that may be acted on at `now`.

    A payment is dated by its booking day, and statements arrive the next working day:
    an order may only be cancelled for a deadline once the end of the `grace`-th working
    day after the deadline's day has passed, so that a payment booked by the deadline
    has had its chance to arrive. Deadlines end at the end of a Riga day (R0.2); every
    deadline at or before the returned moment is due."""
    day = riga_date(now)
    while calendar.working_days_end(day, grace) >= now:
        day -= timedelta(days=1)
    return end_of_day(day)


def booked_in_time(booked_at: datetime, deadline: datetime) -> bool:
    """R10, R12: a payment booked on or before the deadline's day is in time, whenever its
    statement is imported."""
    return riga_date(booked_at) <= riga_date(deadline)
