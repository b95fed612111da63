"""Deadline jobs of orders (registered in shop.deadlines; run by run_deadlines)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from orders.models import AWAITING_PAYMENT, CancelReason, Order, OrderStatus
from orders.services import idempotency, refunds
from orders.services.lifecycle import cancel_order
from orders.services.locks import lock_order
from shop.calendar import riga_date
from shop.deadlines import deadline_job

BATCH = 500


def _in_batches(queryset):
    """Ids of the due orders in pk order, a batch at a time (keyset pagination)."""
    last = 0
    while True:
        ids = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return
        yield from ids
        last = ids[-1]


@deadline_job("no_contact")
def cancel_without_contact(now: datetime) -> int:
    """R12 (T3.4): no contact by the end of the 3rd working day after placement."""
    due = Order.objects.filter(
        status=OrderStatus.PLACED, contact_established_at__isnull=True, contact_deadline__lt=now
    )
    count = 0
    for order_id in _in_batches(due):
        with transaction.atomic():
            order = lock_order(order_id)  # re-check under the lock: a payment may have come
            if (
                order.status == OrderStatus.PLACED
                and order.contact_established_at is None
                and order.contact_deadline < now
            ):
                cancel_order(order_id=order_id, reason=CancelReason.NO_CONTACT, at=now)
                count += 1
    return count


@deadline_job("unpaid")
def cancel_unpaid(now: datetime) -> int:
    """R10: still unpaid at the end of the invoice due date."""
    due = Order.objects.filter(status__in=AWAITING_PAYMENT, payment_due_at__lt=now)
    count = 0
    for order_id in _in_batches(due):
        with transaction.atomic():
            order = lock_order(order_id)
            if order.status in AWAITING_PAYMENT and order.payment_due_at < now:
                cancel_order(order_id=order_id, reason=CancelReason.UNPAID, at=now)
                count += 1
    return count


@deadline_job("overdue_refunds")
def flag_overdue_refunds(now: datetime) -> int:
    """R21: refunds past their due date are flagged to staff."""
    return refunds.flag_overdue_refunds(today=riga_date(now))


@deadline_job("idempotency_purge")
def purge_idempotency_records(now: datetime) -> int:
    return idempotency.purge_expired(now=now)
