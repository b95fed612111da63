"""The retention sweep (R29): erase what is past its date, every night and on demand.

    enforce_retention(now=..., batch_size=1000, progress=callable)

1. Orders without a ledger get one (orders created before the ledger existed, or bulk
   loaded), and ledger rows still undated although their order is finished are
   recomputed (a missed "delivered" call heals here).
2. Ledger rows past their date are read through the `ledger_sweep_idx` index in batches
   (keyset pagination on (keep_until, id)); each batch is recomputed first (facts may have
   changed: a late refund, a claim, a hold), then what is still past its date is erased
   in bulk (legal.services.erasure), one transaction per batch. Rows held by an open
   claim or dispute (legal.holds) get no date and are skipped.
3. Rows with dates of their own (consents, data-subject requests) and the registered
   sweepers (the outbox, unmatched bank entries, ...) follow.

Resumable: a batch is committed whole or not at all, and what is done is not found again.
Idempotent: a second run finds nothing and changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection, reset_queries, transaction
from django.db.models import BooleanField, Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.utils import timezone

from legal import registry
from legal.models import ErasureReason, PersonalDataRecord, SweepCursor
from legal.services import accounts, erasure, ledger
from orders.models import Order
from shop.calendar import riga_date

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
FINISHED_STATUSES = ["delivered", "closed", "cancelled"]
DATED_RULES = {"contract", "accounting", "communication"}


class _Reasons(dict):
    def __missing__(self, category: str) -> str:
        return ErasureReason.RETENTION


REASONS = _Reasons(consents=ErasureReason.CONSENT_WITHDRAWN)


@dataclass
class SweepReport:
    today: date
    ledgers_created: int = 0
    ledgers_refreshed: int = 0
    erased: Counter = field(default_factory=Counter)  # category -> order rows erased
    postponed: int = 0  # rows whose date moved on when recomputed (late facts, holds)
    dated_rows: Counter = field(default_factory=Counter)  # model -> rows erased
    swept: Counter = field(default_factory=Counter)  # sweeper -> rows erased
    batches: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.erased.values()) + sum(self.dated_rows.values()) + sum(self.swept.values())


def _no_progress(done: int, total: int, stage: str) -> None:
    return None


def pending_count(today: date) -> int:
    """Ledger rows past their date, not erased yet (through the sweep index)."""
    return PersonalDataRecord.objects.filter(erased_at__isnull=True, keep_until__lt=today).count()


def enforce_retention(
    *,
    now: datetime | None = None,
    batch_size: int = 10000,
    progress: Progress | None = None,
) -> SweepReport:
    started = time.perf_counter()
    now = now or timezone.now()
    today = riga_date(now)
    progress = progress or _no_progress
    report = SweepReport(today=today)

    report.ledgers_created = backfill_ledgers(now=now, batch_size=batch_size)
    report.ledgers_refreshed = refresh_undated(now=now, batch_size=batch_size)
    _sweep_ledger(report, now=now, today=today, batch_size=batch_size, progress=progress)
    for fieldset in registry.dated_fieldsets():
        report.dated_rows[fieldset.model_label] += _sweep_dated(
            fieldset, now=now, today=today, batch_size=batch_size
        )
    for sweeper in registry.sweepers():
        report.swept[sweeper.name] += sweeper.func(today=today, now=now, batch_size=batch_size)
    accounts.forget_used_links(now=now)
    report.seconds = time.perf_counter() - started
    logger.info(
        "retention sweep %s: %s order categories, %s dated rows, %s other rows erased in %.1f s",
        today,
        sum(report.erased.values()),
        sum(report.dated_rows.values()),
        sum(report.swept.values()),
        report.seconds,
    )
    return report


def backfill_ledgers(*, now: datetime, batch_size: int = 1000) -> int:
    """Orders that have no ledger yet get one (orders older than the ledger, bulk loads).

    Remembers the last order looked at, so a nightly run only looks at new orders."""
    cursor, _ = SweepCursor.objects.get_or_create(name="ledger-backfill")
    last = Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    created, position = 0, cursor.position
    without = ~Exists(PersonalDataRecord.objects.filter(order_id=OuterRef("pk")))
    while True:
        ids = list(
            Order.objects.filter(without, pk__gt=position, pk__lte=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            created += ledger.recompute_ledger(order_ids=ids, now=now)
        position = ids[-1]
        reset_queries()
    SweepCursor.objects.filter(pk=cursor.pk).update(position=max(last, cursor.position))
    return created


def refresh_undated(*, now: datetime, batch_size: int = 1000) -> int:
    """Undated rows of finished orders: recompute (a missed call, a hold that ended)."""
    refreshed, cursor = 0, 0
    rules_by_code = {c.code for c in ledger.applicable_categories() if c.rule in DATED_RULES}
    while True:
        ids = list(
            PersonalDataRecord.objects.filter(
                erased_at__isnull=True,
                keep_until__isnull=True,
                category__in=rules_by_code,
                order__status__in=FINISHED_STATUSES,
                order_id__gt=cursor,
            )
            .order_by("order_id")
            .values_list("order_id", flat=True)
            .distinct()[:batch_size]
        )
        if not ids:
            return refreshed
        with transaction.atomic():
            refreshed += ledger.recompute_ledger(order_ids=ids, now=now)
        cursor = ids[-1]
        reset_queries()


def _after(keep_until: date, pk: int) -> RawSQL:
    """Keyset pagination on the sweep index: (keep_until, id) > (last seen)."""
    quote = connection.ops.quote_name
    return RawSQL(  # noqa: S611  (quoted identifiers; the values are parameters)
        f"({quote('keep_until')}, {quote('id')}) > (%s, %s)",
        (connection.ops.adapt_datefield_value(keep_until), pk),
        output_field=BooleanField(),
    )


def _sweep_ledger(
    report: SweepReport, *, now: datetime, today: date, batch_size: int, progress: Progress
) -> None:
    total = pending_count(today)
    done = 0
    progress(0, total, "ledger")
    after: tuple[date, int] | None = None
    while True:
        queryset = PersonalDataRecord.objects.filter(erased_at__isnull=True, keep_until__lt=today)
        if after is not None:
            queryset = queryset.filter(_after(*after))
        batch = list(
            queryset.order_by("keep_until", "pk").values_list(
                "pk", "order_id", "category", "keep_until"
            )[:batch_size]
        )
        if not batch:
            progress(total, total, "ledger")
            break
        after = (batch[-1][3], batch[-1][0])
        with transaction.atomic():
            # Recompute first (a late refund, a new hold), then erase everything of these
            # orders that is past its date, whatever its category: each order once.
            # No row locks: closing a ledger row checks `erased_at IS NULL` again, so two
            # sweeps at once never record an erasure twice, and erasing is idempotent.
            current = ledger.recompute_and_read(order_ids=[row[1] for row in batch], now=now)
            due = [
                (pk, order_id, category)
                for pk, order_id, category, keep_until in current
                if keep_until is not None and keep_until < today
            ]
            erasure.erase_ledger_rows(rows=due, reason=REASONS, now=now)
        reset_queries()  # with DEBUG on, Django keeps every statement in memory
        report.batches += 1
        due_ids = {row[0] for row in due}
        report.postponed += sum(1 for row in batch if row[0] not in due_ids)
        for _pk, _order_id, category in due:
            report.erased[category] += 1
        done += len(due_ids | {row[0] for row in batch})
        progress(min(done, total), total, "ledger")


def _sweep_dated(fieldset, *, now: datetime, today: date, batch_size: int) -> int:
    """Rows with their own `keep_until` (consents, data-subject requests)."""
    model = fieldset.model
    updates = {name: eraser.expression(name) for name, eraser in fieldset.fields.items()}
    updates["erased_at"] = now
    order_path = fieldset.order_path
    names = [f"{fieldset.model_label}.{name}" for name in fieldset.fields]
    erased = 0
    while True:
        columns = ["pk", order_path] if order_path else ["pk"]
        rows = list(
            model._base_manager.filter(erased_at__isnull=True, keep_until__lt=today)
            .order_by("keep_until", "pk")
            .values_list(*columns)[:batch_size]
        )
        if not rows:
            return erased
        with transaction.atomic():
            model._base_manager.filter(pk__in=[r[0] for r in rows]).update(**updates)
            for row in rows:
                erasure.record_erasure(
                    category=fieldset.category,
                    reason=(
                        ErasureReason.CONSENT_WITHDRAWN
                        if fieldset.category == "consents"
                        else ErasureReason.RETENTION
                    ),
                    fields=names,
                    rows=1,
                    note=f"{fieldset.model_label} #{row[0]}",
                    order_id=row[1] if order_path else None,
                    now=now,
                )
        erased += len(rows)
        reset_queries()
