"""R0.2-R0.4: the Latvian calendar and periods per Regulation 1182/71."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.calendar import RIGA, LatvianCalendar, end_of_day, riga_date
from shop.models import ExtraHoliday
from shop.selectors import latvian_calendar

cal = LatvianCalendar()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 11, 18), False),  # R0.3 Proclamation Day, a Wednesday
        (date(2026, 11, 17), True),
        (date(2026, 11, 19), True),
        (date(2026, 4, 3), False),  # Good Friday 2026
        (date(2026, 4, 6), False),  # Easter Monday 2026
        (date(2026, 4, 7), True),
        (date(2027, 3, 26), False),  # Good Friday 2027
        (date(2027, 3, 29), False),  # Easter Monday 2027
        (date(2027, 3, 30), True),
        (date(2025, 5, 4), False),  # Sunday
        (date(2025, 5, 5), False),  # R0.3: 4 May on a Sunday moves to Monday 5 May
        (date(2025, 5, 6), True),
        (date(2026, 6, 22), False),  # day off moved by Cabinet order (R0.3)
        (date(2026, 6, 23), False),
        (date(2026, 6, 24), False),
        (date(2026, 6, 25), True),
        (date(2026, 12, 23), True),
        (date(2026, 12, 24), False),
        (date(2026, 12, 25), False),
        (date(2026, 12, 28), True),
        (date(2026, 12, 31), False),
        (date(2027, 1, 1), False),
        (date(2026, 1, 2), False),  # moved day off
        (date(2026, 11, 21), False),  # Saturday
    ],
)
def test_r0_3_working_days(day, working):
    """R0.3: working days are Mon-Fri that are not Latvian public holidays."""
    assert cal.is_working_day(day) is working


def test_r0_3_christmas_week_2026():
    """R0.3: from Wed 23 Dec 2026 the next working day is Mon 28 Dec."""
    assert cal.next_working_day(date(2026, 12, 23)) == date(2026, 12, 28)
    assert cal.add_working_days(date(2026, 12, 22), 3) == date(2026, 12, 29)


def test_r0_3_working_days_skip_18_november():
    """R0.3: three working days after Fri 13 Nov 2026 is Thu 19 Nov (18 Nov is a holiday)."""
    assert cal.add_working_days(date(2026, 11, 13), 3) == date(2026, 11, 19)


@pytest.mark.parametrize(
    ("event", "days", "last_day"),
    [
        (date(2026, 11, 2), 14, date(2026, 11, 16)),
        (date(2026, 11, 4), 14, date(2026, 11, 19)),  # 18 Nov holiday
        (date(2026, 12, 10), 14, date(2026, 12, 28)),  # 24-27 Dec off
        (date(2026, 6, 8), 14, date(2026, 6, 25)),  # 22-24 Jun off
        (date(2026, 3, 20), 14, date(2026, 4, 7)),  # Good Friday to Easter Monday
        (date(2025, 4, 20), 14, date(2025, 5, 6)),  # 4 May Sunday, 5 May off
    ],
)
def test_r0_4_period_last_day(event, days, last_day):
    """R0.4: the event day is not counted; a last day off rolls to the next working day."""
    assert cal.period_last_day(event, days) == last_day


def test_r0_2_period_ends_at_end_of_last_day_riga():
    """R0.2: a deadline on day D ends at 23:59:59.999999 Riga time."""
    end = cal.period_end(date(2026, 11, 2), 14)
    assert end == datetime(2026, 11, 16, 23, 59, 59, 999999, tzinfo=RIGA)
    assert end.astimezone(UTC) == datetime(2026, 11, 16, 21, 59, 59, 999999, tzinfo=UTC)


def test_r0_2_end_of_day_across_summer_time():
    """R0.2: on the DST change days the end of day is still local midnight."""
    # Riga: summer time starts 29 Mar 2026, ends 25 Oct 2026.
    assert end_of_day(date(2026, 3, 29)).astimezone(UTC).hour == 20  # UTC+3
    assert end_of_day(date(2026, 10, 25)).astimezone(UTC).hour == 21  # UTC+2


def test_r0_2_riga_date_of_utc_timestamp():
    """R0.2: 22:30 UTC on 3 Nov is already 4 Nov in Riga."""
    assert riga_date(datetime(2026, 11, 3, 22, 30, tzinfo=UTC)) == date(2026, 11, 4)
    with pytest.raises(ValueError):
        riga_date(datetime(2026, 11, 3, 22, 30))


@pytest.mark.django_db
def test_r0_3_extra_holiday_from_admin_table():
    """R0.3: a one-off day off entered in the override table is not a working day."""
    ExtraHoliday.objects.create(date=date(2026, 11, 20), name="Valsts noteikta brīvdiena")
    assert latvian_calendar().is_working_day(date(2026, 11, 20)) is False
    assert LatvianCalendar().is_working_day(date(2026, 11, 20)) is True


@given(
    event=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    days=st.integers(min_value=1, max_value=60),
)
def test_r0_4_period_never_ends_on_a_day_off_and_is_never_short(event, days):
    """R0.4 property: the last day is a working day, at least `days` after the event,
    and no working day is skipped on the way."""
    last = cal.period_last_day(event, days)
    assert cal.is_working_day(last)
    assert last >= event + timedelta(days=days)
    day = event + timedelta(days=days)
    while day < last:
        assert not cal.is_working_day(day)
        day += timedelta(days=1)


@given(
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    count=st.integers(min_value=0, max_value=30),
)
def test_r0_3_add_working_days_counts_exactly(start, count):
    """R0.3 property: exactly `count` working days lie in (start, result]."""
    result = cal.add_working_days(start, count)
    counted = sum(
        cal.is_working_day(start + timedelta(days=i)) for i in range(1, (result - start).days + 1)
    )
    assert counted == count
    if count:
        assert cal.is_working_day(result)
