"""The Latvian calendar (R0.2-R0.4), pure: no database access.

- R0.2: legal deadlines are computed in Europe/Riga; a deadline "on day D" ends at
  23:59:59.999999 Riga time of day D. Timestamps are stored in UTC.
- R0.3: a working day is Monday to Friday that is not a Latvian public holiday. The
  `holidays` package (country LV) is used as it is, including the days off moved by
  Cabinet order; extra one-off days come from the admin-editable override table
  (`shop.models.ExtraHoliday`), passed in here as plain dates.
- R0.4 (Regulation 1182/71 Art 3): the day of the event is not counted; a period ends at
  the end of its last day; a last day on a Saturday, Sunday or public holiday moves to
  the end of the next working day.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

RIGA = ZoneInfo("Europe/Riga")
END_OF_DAY = time(23, 59, 59, 999999)


@functools.lru_cache(maxsize=64)
def _package_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("LV", years=year).keys())


def riga_date(moment: datetime) -> date:
    """The calendar day in Riga of an aware timestamp."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: timestamps must be timezone-aware")
    return moment.astimezone(RIGA).date()


def end_of_day(day: date) -> datetime:
    """R0.2: the last microsecond of `day` in Riga, as an aware datetime."""
    return datetime.combine(day, END_OF_DAY, tzinfo=RIGA)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=RIGA)


class LatvianCalendar:
    """Working days in Latvia. `extra_holidays` are one-off days off the package lacks."""

    def __init__(self, extra_holidays: Iterable[date] = ()) -> None:
        self.extra_holidays = frozenset(extra_holidays)

    def is_public_holiday(self, day: date) -> bool:
        return day in _package_holidays(day.year) or day in self.extra_holidays

    def is_working_day(self, day: date) -> bool:
        """R0.3: Monday-Friday and not a holiday (moved days off count as holidays)."""
        return day.weekday() < 5 and not self.is_public_holiday(day)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def roll_forward(self, day: date) -> date:
        """`day` itself if it is a working day, otherwise the next working day."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (the day itself is not counted)."""
        if count < 0:
            raise ValueError("count must not be negative")
        for _ in range(count):
            day = self.next_working_day(day)
        return day

    def period_last_day(self, event_day: date, days: int) -> date:
        """R0.4: the last day of a period of `days` calendar days after `event_day`."""
        if days < 1:
            raise ValueError("a period lasts at least one day")
        return self.roll_forward(event_day + timedelta(days=days))

    def period_end(self, event_day: date, days: int) -> datetime:
        """R0.4 with R0.2: the moment a period of `days` days after `event_day` ends."""
        return end_of_day(self.period_last_day(event_day, days))

    def working_days_end(self, event_day: date, count: int) -> datetime:
        """End of the `count`-th working day after `event_day`, Riga time."""
        return end_of_day(self.add_working_days(event_day, count))


def calendar_days_end(event_day: date, days: int) -> datetime:
    """End of the day `days` calendar days after `event_day` (no rolling forward)."""
    return end_of_day(event_day + timedelta(days=days))
