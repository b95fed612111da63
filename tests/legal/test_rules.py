"""legal.rules: retention and request deadlines as pure arithmetic (R28, R30)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from legal import rules
from shop.calendar import LatvianCalendar

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


def test_r28_delivered_on_15_jan_2026_contact_data_kept_to_15_mar_2028():
    """R28: contact data until delivery + 2 years + 2 months."""
    assert rules.contract_data_until(delivered_on=date(2026, 1, 15), closed_on=None) == date(
        2028, 3, 15
    )


def test_r28_invoice_issued_in_2026_kept_to_31_dec_2031():
    """R28 (Accounting Law §28): 5 years after the end of the year of issue."""
    assert rules.accounting_until(2026) == date(2031, 12, 31)


def test_r28_never_delivered_order_kept_3_years_after_it_closed():
    assert rules.contract_data_until(delivered_on=None, closed_on=date(2026, 5, 4)) == date(
        2029, 5, 4
    )


def test_r28_an_open_order_has_no_date_yet():
    assert rules.contract_data_until(delivered_on=None, closed_on=None) is None
    facts = rules.OrderFacts(placed_on=date(2026, 1, 5), is_open=True, accounting_year=2026)
    for rule in (rules.Rule.CONTRACT, rules.Rule.ACCOUNTING, rules.Rule.COMMUNICATION):
        assert rules.order_data_until(rule, facts) is None


def test_r28_an_open_claim_postpones_and_a_closed_one_keeps_3_years_after_closing():
    """R28: an open claim or dispute holds everything; closed, 3 years after closing."""
    facts = rules.OrderFacts(
        placed_on=date(2026, 1, 5),
        is_open=False,
        delivered_on=date(2026, 1, 15),
        holds=(rules.Hold("claim", date(2027, 6, 1)),),
    )
    assert rules.order_data_until(rules.Rule.CONTRACT, facts) is None
    closed = rules.OrderFacts(
        placed_on=date(2026, 1, 5),
        is_open=False,
        delivered_on=date(2026, 1, 15),
        holds=(rules.Hold("claim", date(2027, 6, 1), date(2027, 9, 30)),),
    )
    assert rules.order_data_until(rules.Rule.CONTRACT, closed) == date(2030, 9, 30)


def test_r28_withdrawn_consent_is_kept_to_the_day_of_withdrawal_and_erased_in_3_working_days():
    assert rules.consent_until(active=True, withdrawn_on=[date(2026, 3, 2)]) is None
    assert rules.consent_until(active=False, withdrawn_on=[date(2026, 3, 2)]) == date(2026, 3, 2)
    calendar_lv = LatvianCalendar()
    # Friday 1 May 2026 is a holiday, 4 May too (Monday): 30 Apr + 3 working days = 7 May.
    assert rules.consent_erasure_deadline(date(2026, 4, 30), calendar_lv.add_working_days) == date(
        2026, 5, 7
    )


def test_r30_answer_due_one_month_later_or_the_last_day_of_that_month():
    """R30 (GDPR Art 12(3)): the same day next month, or its last day."""
    assert rules.request_answer_due(date(2026, 3, 15)) == date(2026, 4, 15)
    assert rules.request_answer_due(date(2026, 1, 31)) == date(2026, 2, 28)
    assert rules.request_answer_due(date(2028, 1, 31)) == date(2028, 2, 29)
    assert rules.request_answer_due(date(2026, 12, 31)) == date(2027, 1, 31)


def test_r29_postcode_area():
    assert rules.postcode_area("LV-1050") == "LV-10xx"
    assert rules.postcode_area("") == ""


@given(days, st.integers(min_value=0, max_value=600))
def test_r28_add_months_never_overflows_the_month(day, months):
    result = rules.add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    last = calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(day.day, last)


@given(days)
def test_r28_contact_data_outlives_the_conformity_period(delivered):
    """R28, R23: delivery + 2 years + 2 months is never before 2 years after delivery."""
    until = rules.contract_data_until(delivered_on=delivered, closed_on=None)
    assert until > rules.add_years(delivered, 2)
    assert until <= rules.add_years(delivered, 2) + timedelta(days=62)


@given(days, st.integers(min_value=0, max_value=3))
def test_r28_accounting_records_outlive_the_contract_data(delivered, late_years):
    facts = rules.OrderFacts(
        placed_on=delivered,
        is_open=False,
        delivered_on=delivered,
        accounting_year=delivered.year + late_years,
    )
    accounting = rules.order_data_until(rules.Rule.ACCOUNTING, facts)
    assert accounting == date(delivered.year + late_years + 5, 12, 31)
    assert accounting >= rules.order_data_until(rules.Rule.CONTRACT, facts)


@given(days, st.lists(days, max_size=3), st.lists(days, max_size=3))
def test_r28_holds_only_ever_postpone(delivered, opened, closed):
    facts_without = rules.OrderFacts(placed_on=delivered, is_open=False, delivered_on=delivered)
    base = rules.order_data_until(rules.Rule.CONTRACT, facts_without)
    holds = tuple(rules.Hold("claim", o, c) for o, c in zip(opened, closed, strict=False))
    held = rules.order_data_until(
        rules.Rule.CONTRACT,
        rules.OrderFacts(placed_on=delivered, is_open=False, delivered_on=delivered, holds=holds),
    )
    assert held is None or held >= base


@given(days)
def test_r30_answer_within_one_month(received):
    due = rules.request_answer_due(received)
    assert 28 <= (due - received).days <= 31


@given(days, days)
def test_r29_past_means_after_the_last_day_kept(keep_until, today):
    assert rules.is_past(keep_until, today) == (today > keep_until)
    assert not rules.is_past(None, today)
