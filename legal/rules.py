"""Retention and request deadlines as pure arithmetic (R28, R30): dates in, dates out.

No ORM here: the services gather the facts of an order (Riga calendar days, R0.2) and
these functions say until when each category of its personal data may be kept.

- Contact, identity and delivery data (R28; KP11.1-11.2, IP29.1-29.3, AP10.1): while the
  contract is performed, then until delivery + 2 years + 2 months (the 2-year conformity
  period of R23 plus the 2 months the law gives to notify a defect); an order that was
  closed or cancelled without ever being delivered: 3 years after it was closed
  (Commercial Law §406 limitation).
- Accounting records (Accounting Law §28; KP11.3, IP29.2): 5 years after the end of the
  year of issue of the latest document (an invoice of 2026 is kept to 31 Dec 2031).
- Marketing consents (R31; KP11.4, IP15, IP29.4): kept while the consent stands; once it
  is withdrawn, erased within 3 working days (IP15).
- Communication (KA7): what the customer was told is evidence for legal claims: each email
  3 years after it was sent (Commercial Law §406).
- Legal hold (R28): an open claim or dispute postpones erasure until 3 years after it
  closes (Commercial Law §406).
- Answer deadline of a data-subject request (GDPR Art 12(3)): one month after receipt:
  the same day of the next month, or that month's last day when it has no such day.
"""

from __future__ import annotations

import calendar as _calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

CONTRACT_MONTHS_AFTER_DELIVERY = 26  # R28: 2 years (R23) + 2 months (notice of a defect)
LIMITATION_YEARS = 3  # Commercial Law §406
ACCOUNTING_YEARS = 5  # Accounting Law §28, after the end of the year of issue
CONSENT_ERASURE_WORKING_DAYS = 3  # IP15
REQUEST_ANSWER_MONTHS = 1  # GDPR Art 12(3)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the last day of that month when it is shorter."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if day.day <= 28:  # every month has the day (the sweep adds months to every order)
        return date(year, month, day.day)
    last = _calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def add_years(day: date, years: int) -> date:
    return add_months(day, 12 * years)


def request_answer_due(received_on: date) -> date:
    """R30 (GDPR Art 12(3)): one month after the day of receipt."""
    return add_months(received_on, REQUEST_ANSWER_MONTHS)


def contract_data_until(*, delivered_on: date | None, closed_on: date | None) -> date | None:
    """R28: contact, identity, delivery (and claim) data.

    `delivered_on`: the day of the (last) delivery; `closed_on`: the day the order was
    closed or cancelled. Neither: the contract is still performed, no date yet (None).
    """
    if delivered_on is not None:
        return add_months(delivered_on, CONTRACT_MONTHS_AFTER_DELIVERY)
    if closed_on is not None:
        return add_years(closed_on, LIMITATION_YEARS)
    return None


def accounting_until(last_document_year: int | None) -> date | None:
    """R28 (Accounting Law §28): to 31 December of the 5th year after the year of issue."""
    if last_document_year is None:
        return None
    return date(last_document_year + ACCOUNTING_YEARS, 12, 31)


def communication_until(last_sent_on: date | None) -> date | None:
    """KA7: an email is kept 3 years after it was sent (Commercial Law §406)."""
    if last_sent_on is None:
        return None
    return add_years(last_sent_on, LIMITATION_YEARS)


def consent_until(*, active: bool, withdrawn_on: Iterable[date]) -> date | None:
    """R31 (IP15): kept while a consent stands; withdrawn: kept to the day of withdrawal
    (the daily sweep erases it the next night, within 3 working days)."""
    if active:
        return None
    days = list(withdrawn_on)
    return max(days) if days else None


def consent_erasure_deadline(withdrawn_on: date, add_working_days) -> date:
    """IP15: the last day by which withdrawn consent data is erased (3 working days).

    `add_working_days` is `LatvianCalendar.add_working_days` (R0.3)."""
    return add_working_days(withdrawn_on, CONSENT_ERASURE_WORKING_DAYS)


@dataclass(frozen=True)
class Hold:
    """A legal hold on an order (open claim, dispute, authority request)."""

    reason: str
    opened_on: date
    closed_on: date | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_on is None


def hold_until(holds: Iterable[Hold]) -> tuple[bool, date | None]:
    """R28: (held now, the latest date a closed hold keeps data to: closed + 3 years)."""
    held, until = False, None
    for hold in holds:
        if hold.is_open:
            held = True
        else:
            end = add_years(hold.closed_on, LIMITATION_YEARS)
            until = end if until is None or end > until else until
    return held, until


def apply_holds(keep_until: date | None, holds: Iterable[Hold]) -> date | None:
    """R28: an open hold keeps everything (None); a closed one to 3 years after it closed.

    `keep_until` None means "no date yet" (contract performed) and stays None."""
    held, until = hold_until(holds)
    if held or keep_until is None:
        return None
    if until is not None and until > keep_until:
        return until
    return keep_until


def request_record_until(answered_on: date | None) -> date | None:
    """R30: a data-subject request and its answer are evidence for 3 years (§406)."""
    if answered_on is None:
        return None
    return add_years(answered_on, LIMITATION_YEARS)


def is_past(keep_until: date | None, today: date) -> bool:
    """Kept *to* `keep_until` inclusive: erased from the next day on."""
    return keep_until is not None and keep_until < today


_POSTAL = re.compile(r"^(LV-\d{2})")


def postcode_area(postal_code: str) -> str:
    """R29: the postcode area stays for statistics: LV-1050 -> LV-10xx."""
    match = _POSTAL.match((postal_code or "").strip().upper())
    return f"{match.group(1)}xx" if match else ""


# --- The order as a whole --------------------------------------------------------------


@dataclass(frozen=True)
class OrderFacts:
    """What the retention of an order's data depends on, as Riga calendar days."""

    placed_on: date
    is_open: bool  # placed, confirmed, paid or shipped: the contract is being performed
    delivered_on: date | None = None
    closed_on: date | None = None  # closed or cancelled
    last_event_on: date | None = None  # the latest thing that happened (emails follow events)
    accounting_year: int | None = None  # year of issue of the latest accounting document
    holds: tuple[Hold, ...] = field(default_factory=tuple)


class Rule:
    """The retention rules of the policy (legal.policy names one per category)."""

    CONTRACT = "contract"
    ACCOUNTING = "accounting"
    COMMUNICATION = "communication"
    CONSENT = "consent"


def order_data_until(rule: str, facts: OrderFacts) -> date | None:
    """R28 for one category of an order's data; None: no date yet (kept for now)."""
    if facts.is_open:
        return None  # KP11.1: while the contract is in force
    if rule == Rule.CONTRACT:
        base = contract_data_until(delivered_on=facts.delivered_on, closed_on=facts.closed_on)
    elif rule == Rule.ACCOUNTING:
        base = accounting_until(facts.accounting_year or facts.placed_on.year)
        # Never before the contract data: the invoice snapshot outlives the order's data.
        contract = contract_data_until(delivered_on=facts.delivered_on, closed_on=facts.closed_on)
        if base is not None and contract is not None and contract > base:
            base = contract
    elif rule == Rule.COMMUNICATION:
        events = (facts.last_event_on, facts.closed_on, facts.delivered_on, facts.placed_on)
        base = communication_until(max(d for d in events if d is not None))
    else:
        raise ValueError(f"no order rule {rule!r}")
    return apply_holds(base, facts.holds)
