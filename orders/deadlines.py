"""Deadline jobs of orders (registered in shop.deadlines; run by run_deadlines)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from legal.services import ledger
from orders import rules
from orders.models import AWAITING_PAYMENT, CancelReason, Order, OrderStatus
from orders.services import idempotency, refunds
from orders.services.lifecycle import cancel_order
from orders.services.locks import lock_order
from shop.calendar import riga_date
from shop.deadlines import deadline_job
from shop.selectors import latvian_calendar

BATCH = 500


def _pages(queryset, deadline: str):
    """Ids of the due orders, earliest deadline first, a page of BATCH at a time.

    Keyset pagination on (deadline, pk): the partial index on the deadline serves it in
    order and the LIMIT stops the scan early. Paging in pk order instead lets PostgreSQL
    walk the primary key of every order when it expects many due ones (due orders are the
    newest, at the end of the pk range): seconds over a million orders.
    """
    after = None
    while True:
        page = queryset
        if after is not None:
            page = page.filter(
                Q(**{f"{deadline}__gt": after[0]}) | Q(**{deadline: after[0], "pk__gt": after[1]})
            )
        rows = list(page.order_by(deadline, "pk").values_list(deadline, "pk")[:BATCH])
        if not rows:
            return
        yield [pk for _deadline, pk in rows]
        after = rows[-1]


def _cancel_due(queryset, deadline: str, *, still_due, reason: str, now: datetime) -> int:
    """Cancel each due order in its own transaction (re-checked under the lock); the
    personal-data ledgers of a page are recomputed together afterwards (R26, R28), in a
    fixed number of queries instead of a dozen per order. Should the process stop in
    between, the retention sweep recomputes what was missed before it erases anything."""
    count = 0
    for page in _pages(queryset, deadline):
        cancelled = []
        for order_id in page:
            with transaction.atomic():
                order = lock_order(order_id)
                if still_due(order):
                    cancel_order(order_id=order_id, reason=reason, at=now, update_ledger=False)
                    cancelled.append(order_id)
        if cancelled:
            with transaction.atomic():
                ledger.recompute_ledger(order_ids=cancelled)
        count += len(cancelled)
    return count


def _cutoff(now: datetime) -> datetime:
    """R10, R12: deadlines up to this moment are due; later ones wait for the statements
    that can still bring a payment booked in time (SHOP_STATEMENT_GRACE_WORKING_DAYS)."""
    grace = settings.SHOP.get("STATEMENT_GRACE_WORKING_DAYS", 1)
    return rules.statement_grace_cutoff(now, latvian_calendar(), grace)


@deadline_job("no_contact")
def cancel_without_contact(now: datetime) -> int:
    """R12 (T3.4): no contact by the end of the 3rd working day after placement (once the
    next working day's statements are in)."""
    cutoff = _cutoff(now)
    due = Order.objects.filter(
        status=OrderStatus.PLACED,
        contact_established_at__isnull=True,
        contact_deadline__lte=cutoff,
    )
    return _cancel_due(
        due,
        "contact_deadline",
        # Re-check under the lock: a payment or a confirmation may have come.
        still_due=lambda order: (
            order.status == OrderStatus.PLACED
            and order.contact_established_at is None
            and order.contact_deadline <= cutoff
        ),
        reason=CancelReason.NO_CONTACT,
        now=now,
    )


@deadline_job("unpaid")
def cancel_unpaid(now: datetime) -> int:
    """R10: still unpaid at the end of the invoice due date (once the next working day's
    statements are in)."""
    cutoff = _cutoff(now)
    due = Order.objects.filter(status__in=AWAITING_PAYMENT, payment_due_at__lte=cutoff)
    return _cancel_due(
        due,
        "payment_due_at",
        still_due=lambda order: order.status in AWAITING_PAYMENT and order.payment_due_at <= cutoff,
        reason=CancelReason.UNPAID,
        now=now,
    )


@deadline_job("overdue_refunds")
def flag_overdue_refunds(now: datetime) -> int:
    """R21: refunds past their due date are flagged to staff."""
    return refunds.flag_overdue_refunds(today=riga_date(now))


@deadline_job("idempotency_purge")
def purge_idempotency_records(now: datetime) -> int:
    return idempotency.purge_expired(now=now)
