"""KA7 communication: the rendered emails kept in the outbox (R28, R29).

Each email is kept 3 years after it was sent (Commercial Law §406: what the customer was
told is evidence in a claim), then its payload is replaced by {"erased": marker,
"template": ...}. Emails to a person whose order is under a legal hold wait for the hold.

The outbox only grows, so the sweep starts from where everything before is done (a
`SweepCursor` on the primary key) and erases what was sent by the cut-off after it, in
batches; held messages are remembered and looked at again on every run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Q

from legal import holds, rules
from legal.models import ErasureReason, SweepCursor
from legal.registry import Eraser
from legal.services.erasure import record_erasure
from legal.sql import ids_in
from shop.calendar import end_of_day

CURSOR = "outbox"


def last_day_past(today: date) -> date:
    """The latest sending day whose emails are past their date on `today`."""
    day = rules.add_years(today, -rules.LIMITATION_YEARS)
    while not rules.is_past(rules.communication_until(day), today):
        day -= timedelta(days=1)
    while rules.is_past(rules.communication_until(day + timedelta(days=1)), today):
        day += timedelta(days=1)
    return day


def held_emails() -> set[str]:
    from orders.models import Order

    order_ids = holds.open_hold_order_ids()
    if not order_ids:
        return set()
    return {
        e.lower() for e in Order.objects.filter(pk__in=order_ids).values_list("email", flat=True)
    }


def _recipients(value) -> list[str]:
    if isinstance(value, str):
        return [value.lower()]
    if isinstance(value, Iterable):
        return [str(v).lower() for v in value]
    return []


def sweep_outbox(*, today: date, now: datetime, batch_size: int, eraser: Eraser) -> int:
    from shop.models import OutboxMessage

    cut = end_of_day(last_day_past(today))
    held = held_emails()
    erased = 0

    def erase(ids: list[int]) -> None:
        nonlocal erased
        if not ids:
            return
        OutboxMessage.objects.filter(ids_in(OutboxMessage, "id", ids)).update(
            payload=eraser.expression("payload")
        )
        record_erasure(
            category="communication",
            reason=ErasureReason.RETENTION,
            fields=["shop.OutboxMessage.payload"],
            rows=len(ids),
            note=f"outbox messages #{min(ids)}-#{max(ids)}",
            now=now,
        )
        erased += len(ids)

    columns = ("pk", "payload__to", "payload__erased")
    sent_by_cut = Q(created_at__lte=cut) & (Q(delivered_at__isnull=True) | Q(delivered_at__lte=cut))
    with transaction.atomic():
        cursor, _ = SweepCursor.objects.get_or_create(name=CURSOR)
        cursor = SweepCursor.objects.select_for_update().get(pk=cursor.pk)
        pending = list(cursor.pending or [])
        if pending:
            still, due = [], []
            for pk, to, done in OutboxMessage.objects.filter(pk__in=pending).values_list(*columns):
                if done:
                    continue
                (still if set(_recipients(to)) & held else due).append(pk)
            erase(due)
            cursor.pending = still
            cursor.save(update_fields=["pending"])

    # Everything sent by the cut after the cursor (pk order need not follow time). The
    # cursor only ever moves over messages that are done, so a crash loses nothing.
    with transaction.atomic():
        position = SweepCursor.objects.get(name=CURSOR).position
        first_not_due = (
            OutboxMessage.objects.filter(pk__gt=position)
            .exclude(sent_by_cut)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
    after = position
    while True:
        with transaction.atomic():
            cursor = SweepCursor.objects.select_for_update().get(name=CURSOR)
            rows = list(
                OutboxMessage.objects.filter(sent_by_cut, pk__gt=after)
                .exclude(payload__has_key="erased")
                .order_by("pk")
                .values_list(*columns)[:batch_size]
            )
            due = []
            for pk, to, done in rows:
                if done:
                    continue
                if set(_recipients(to)) & held:
                    cursor.pending = [*(cursor.pending or []), pk]
                    continue
                due.append(pk)
            erase(due)
            if rows:
                after = rows[-1][0]
            done_up_to = after if len(rows) == batch_size else None
            if done_up_to is None:  # the last batch: everything due is done
                done_up_to = (first_not_due - 1) if first_not_due is not None else after
            elif first_not_due is not None:
                done_up_to = min(done_up_to, first_not_due - 1)
            cursor.position = max(cursor.position, done_up_to)
            cursor.updated_at = now
            cursor.save(update_fields=["position", "pending", "updated_at"])
        if len(rows) < batch_size:
            return erased
