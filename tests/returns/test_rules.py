"""returns/rules.py: withdrawal and conformity arithmetic (R16, R20-R25)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from returns import rules
from returns.rules import WithdrawnLine
from shop.calendar import RIGA, LatvianCalendar

cal = LatvianCalendar()


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


@pytest.mark.parametrize(
    ("delivered", "last_day"),
    [
        (riga(2026, 11, 2, 14, 0), date(2026, 11, 16)),
        (datetime(2026, 11, 3, 22, 30, tzinfo=UTC), date(2026, 11, 19)),  # 4 Nov in Riga
        (riga(2026, 11, 4, 0, 30), date(2026, 11, 19)),  # 18 Nov is a holiday
        (riga(2026, 12, 10, 9, 0), date(2026, 12, 28)),
        (riga(2026, 6, 8, 9, 0), date(2026, 6, 25)),
    ],
)
def test_r16_withdrawal_period_end(delivered, last_day):
    """R16 (R0.4): 14 days from the day after delivery, rolled past days off."""
    end = rules.withdrawal_period_end(delivered, cal)
    assert end == datetime(
        last_day.year, last_day.month, last_day.day, 23, 59, 59, 999999, tzinfo=RIGA
    )


def test_r16_statement_one_minute_before_and_after_the_end():
    delivered = riga(2026, 11, 2, 14, 0)
    end = riga(2026, 11, 16, 23, 59, 59, 999999)
    ok, deadline = rules.statement_in_time(
        received_at=end - timedelta(minutes=1), delivered_at=delivered, calendar=cal
    )
    assert ok and deadline == end
    late, _ = rules.statement_in_time(
        received_at=end + timedelta(minutes=1), delivered_at=delivered, calendar=cal
    )
    assert not late


def test_r16_riga_midnight_counts_as_the_next_day():
    """R16 (R0.2): 23:30 UTC on 1 Nov is already 2 Nov in Riga (UTC+2 in winter)."""
    end = rules.withdrawal_period_end(datetime(2026, 11, 1, 22, 30, tzinfo=UTC), cal)
    assert end.date() == date(2026, 11, 16)


def test_r16_summer_time_change_inside_the_period():
    """R16 (R0.2): delivered 20 Oct 2026 (UTC+3); the period ends 3 Nov at local midnight
    (UTC+2) although the clocks changed on 25 Oct."""
    end = rules.withdrawal_period_end(riga(2026, 10, 20, 10, 0), cal)
    assert end == riga(2026, 11, 3, 23, 59, 59, 999999)
    assert end.astimezone(UTC).hour == 21
    spring = rules.withdrawal_period_end(riga(2026, 3, 20, 10, 0), cal)  # DST starts 29 Mar
    assert spring == riga(2026, 4, 7, 23, 59, 59, 999999)  # 3 Apr Good Friday ... 6 Apr off
    assert spring.astimezone(UTC).hour == 20


def test_r16_before_delivery_always_in_time():
    ok, end = rules.statement_in_time(received_at=riga(2030, 1, 1), delivered_at=None, calendar=cal)
    assert ok and end is None


def test_r20_return_deadline_14_days_after_the_statement():
    assert rules.return_deadline(riga(2026, 11, 10, 15, 0), cal) == riga(
        2026, 11, 24, 23, 59, 59, 999999
    )


def test_r21_refund_due_14_calendar_days_after_the_statement():
    assert rules.refund_due_date(riga(2026, 11, 10, 23, 30)) == date(2026, 11, 24)
    assert rules.refund_due_date(datetime(2026, 11, 10, 22, 30, tzinfo=UTC)) == date(2026, 11, 25)


def test_r21_hold_until_goods_or_proof_whichever_first():
    assert rules.refund_held(goods_received=False, proof_of_dispatch=False, delivered=True)
    assert not rules.refund_held(goods_received=False, proof_of_dispatch=True, delivered=True)
    assert not rules.refund_held(goods_received=True, proof_of_dispatch=False, delivered=True)
    assert not rules.refund_held(goods_received=False, proof_of_dispatch=False, delivered=False)


def test_r21_partial_withdrawals_and_the_delivery_fee():
    """R21: lines of EUR 20.00 and 10.00 with a EUR 2.00 fee: withdrawing the 10.00 line
    refunds 10.00, then the 20.00 line refunds 22.00."""
    ordered = {1: 1, 2: 1}
    first_covers = rules.covers_whole_order(withdrawn={2: 1}, earlier={}, ordered=ordered)
    first = rules.withdrawal_refund_amount(
        lines=[WithdrawnLine(Decimal("10.00"), 1)],
        delivery_fee=Decimal("2.00"),
        covers_whole_order=first_covers,
    )
    assert (first_covers, first) == (False, Decimal("10.00"))
    second_covers = rules.covers_whole_order(withdrawn={1: 1}, earlier={2: 1}, ordered=ordered)
    second = rules.withdrawal_refund_amount(
        lines=[WithdrawnLine(Decimal("20.00"), 1)],
        delivery_fee=Decimal("2.00"),
        covers_whole_order=second_covers,
    )
    assert (second_covers, second) == (True, Decimal("22.00"))


def test_r21_free_delivery_order_one_of_two_lines():
    """R21: a EUR 60.00 order with free delivery, one of two 30.00 lines: 30.00."""
    amount = rules.withdrawal_refund_amount(
        lines=[WithdrawnLine(Decimal("30.00"), 1)],
        delivery_fee=Decimal("0.00"),
        covers_whole_order=False,
    )
    assert amount == Decimal("30.00")


def test_r22_deduction_capped_at_the_line_price_and_rejection():
    assert rules.capped_deduction(deduction=Decimal("50.00"), line_price=Decimal("18.90")) == (
        Decimal("18.90")
    )
    amount = rules.withdrawal_refund_amount(
        lines=[
            WithdrawnLine(Decimal("18.90"), 2, deduction=Decimal("5.00")),
            WithdrawnLine(Decimal("24.20"), 1, rejected=True),  # hygiene product unsealed
        ],
        delivery_fee=Decimal("2.00"),
        covers_whole_order=True,
    )
    assert amount == Decimal("32.80") + Decimal("2.00")


def test_r22_late_return_flag():
    deadline = riga(2026, 11, 24, 23, 59, 59, 999999)
    assert not rules.returned_late(goods_received_at=deadline, deadline=deadline)
    assert rules.returned_late(goods_received_at=deadline + timedelta(seconds=1), deadline=deadline)


@given(
    prices=st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2),
            st.integers(min_value=1, max_value=5),
            st.decimals(min_value=Decimal("0"), max_value=Decimal("3000"), places=2),
        ),
        min_size=1,
        max_size=6,
    ),
    fee=st.sampled_from([Decimal("0.00"), Decimal("2.00")]),
)
def test_r21_r22_refund_never_exceeds_what_was_paid(prices, fee):
    lines = [WithdrawnLine(p, q, deduction=d) for p, q, d in prices]
    amount = rules.withdrawal_refund_amount(lines=lines, delivery_fee=fee, covers_whole_order=True)
    paid = sum((line.price for line in lines), Decimal(0)) + fee
    assert Decimal(0) <= amount <= paid


@pytest.mark.parametrize(
    ("delivered", "edge"),
    [
        (riga(2026, 11, 23, 12, 0), riga(2028, 11, 23, 23, 59, 59, 999999)),
        (datetime(2026, 11, 22, 22, 30, tzinfo=UTC), riga(2028, 11, 23, 23, 59, 59, 999999)),
        (riga(2024, 2, 29, 12, 0), riga(2026, 2, 28, 23, 59, 59, 999999)),
    ],
)
def test_r23_two_year_edge_to_the_day_in_riga(delivered, edge):
    assert rules.conformity_period_end(delivered) == edge


def test_r23_warranty_end():
    assert rules.warranty_end(riga(2026, 1, 31, 9, 0), 25) == riga(2028, 2, 29, 23, 59, 59, 999999)
    assert rules.warranty_end(riga(2026, 1, 31, 9, 0), None) is None


def test_r23_late_notice_flag():
    assert not rules.notice_is_late(
        discovered_on=date(2026, 9, 30), notified_at=riga(2026, 11, 30, 23, 0)
    )
    assert rules.notice_is_late(
        discovered_on=date(2026, 9, 30), notified_at=riga(2026, 12, 1, 0, 1)
    )


def test_r25_answer_deadline_for_a_claim_made_on_20_november_2026():
    """R25: 15 working days after Fri 20 Nov 2026 is Fri 11 Dec 2026."""
    assert rules.claim_answer_deadline(riga(2026, 11, 20, 16, 0), cal) == riga(
        2026, 12, 11, 23, 59, 59, 999999
    )
