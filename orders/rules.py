"""Clocks of orders as arithmetic (pure: dates in, dates out; R0.2-R0.4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shop.calendar import LatvianCalendar, end_of_day, riga_date


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
