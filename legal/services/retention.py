"""The retention sweep (R29): erase what is past its date, every night and on demand.

    enforce_retention(now=..., batch_size=1000, progress=callable)

1. Orders without a ledger get one (orders created before the ledger existed, or bulk
   loaded), and ledger rows still undated although their order is finished are
   recomputed (a missed "delivered" call heals here).
2. The orders with ledger rows past their date are found through the `ledger_sweep_idx`
   index and taken in id order (the order of the tables on disk: each page is written
   once, not once per batch), in batches of about `batch_size` such rows. Each batch is
   recomputed first (facts may have changed: a late refund, a claim, a hold), then what
   is still past its date is erased in bulk (legal.services.erasure), one transaction
   per batch. Rows of an order under a legal hold (legal.holds, R28: an open claim,
   dispute or withdrawal, an unsettled refund, a standing restriction) get no date, and
   the batch asks the holds again (one SQL query) right before it erases. On PostgreSQL
   `WORKERS` batches (different orders) are swept at once, each on a connection of its
   own.
3. Rows with dates of their own (consents, data-subject requests) and the registered
   sweepers (the outbox, unmatched bank entries, ...) follow.

Never stops on one order (R28): a batch that fails is rolled back and swept again order
by order; an order that still fails is logged with its id only (no personal data, not
even the error's message) and counted in `SweepReport.failed_orders`, and the sweep goes
on. A step that fails (a sweeper, the backfill) is logged by name and counted the same
way. `manage.py enforce_retention` exits non-zero when anything failed.

Resumable: a batch is committed whole or not at all, and what is done is not found again.
Idempotent: a second run finds nothing and changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection, connections, reset_queries, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone, translation

from legal import registry
from legal.models import ErasureReason, ErasureRecord, PersonalDataRecord, SweepCursor
from legal.services import accounts, erasure, ledger
from legal.sql import ids_in
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
    failed_orders: list[int] = field(default_factory=list)  # orders whose erasure failed
    failed_steps: list[str] = field(default_factory=list)  # steps that failed as a whole

    @property
    def failed(self) -> int:
        """How many orders and steps failed (the run's exit status is non-zero)."""
        return len(self.failed_orders) + len(self.failed_steps)

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

    with _step(report, "ledger-backfill"):
        report.ledgers_created = backfill_ledgers(now=now, batch_size=batch_size)
    with _step(report, "ledger-refresh"):
        report.ledgers_refreshed = refresh_undated(now=now, batch_size=batch_size)
    with _step(report, "ledger"):
        _sweep_ledger(report, now=now, today=today, batch_size=batch_size, progress=progress)
    for fieldset in registry.dated_fieldsets():
        with _step(report, fieldset.model_label):
            report.dated_rows[fieldset.model_label] += _sweep_dated(
                fieldset, now=now, today=today, batch_size=batch_size
            )
    for sweeper in registry.sweepers():
        with _step(report, sweeper.name):
            report.swept[sweeper.name] += sweeper.func(today=today, now=now, batch_size=batch_size)
    with _step(report, "used-links"):
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
    if report.failed:
        logger.error(
            "retention sweep %s: %s order(s) and %s step(s) failed (orders %s; steps %s)",
            today,
            len(report.failed_orders),
            len(report.failed_steps),
            _id_list(report.failed_orders),
            ", ".join(report.failed_steps),
        )
    return report


def _id_list(order_ids: list[int], limit: int = 50) -> str:
    shown = ", ".join(str(int(i)) for i in order_ids[:limit])
    return f"{shown}, ..." if len(order_ids) > limit else shown


@contextlib.contextmanager
def _step(report: SweepReport, name: str) -> Iterator[None]:
    """Run one step of the sweep; a failure is logged by the step's name and error class
    (never its message: it may quote personal data) and the sweep goes on. Inside a
    caller's transaction the step gets a savepoint, so a failed statement does not
    break what follows; outside one, each batch of the step commits on its own."""
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard:
            yield
    except Exception as exc:
        logger.error("retention sweep step %s failed (%s)", name, type(exc).__name__)
        report.failed_steps.append(name)


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


def _due_orders(today: date) -> tuple[array, array]:
    """The orders with ledger rows past their date, in id order, and how many rows each
    (through the `ledger_sweep_idx` index). Two compact arrays: 8 bytes an order."""
    rows = (
        PersonalDataRecord.objects.filter(erased_at__isnull=True, keep_until__lt=today)
        .values("order_id")
        .annotate(rows=Count("pk"))
        .order_by("order_id")
        .values_list("order_id", "rows")
    )
    order_ids, counts = array("q"), array("q")
    for order_id, count in rows.iterator(chunk_size=20000):
        order_ids.append(order_id)
        counts.append(count)
    return order_ids, counts


def _batches(order_ids: array, counts: array, batch_size: int) -> Iterator[list[int]]:
    """Consecutive orders with about `batch_size` rows past their date between them."""
    batch: list[int] = []
    rows = 0
    for order_id, count in zip(order_ids, counts, strict=True):
        batch.append(order_id)
        rows += count
        if rows >= batch_size:
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


WORKERS = 2  # batches swept at once on PostgreSQL, each on a connection of its own


def _sweep_ledger(
    report: SweepReport, *, now: datetime, today: date, batch_size: int, progress: Progress
) -> None:
    order_ids, counts = _due_orders(today)
    total = sum(counts)
    done = 0
    progress(0, total, "ledger")
    work = functools.partial(_sweep_batch_or_orders, now=now, today=today)
    for result in _run_batches(work, _batches(order_ids, counts, batch_size)):
        report.batches += 1
        report.erased.update(result.erased)
        report.postponed += result.postponed
        report.failed_orders.extend(result.failed)
        done += result.rows
        progress(min(done, total), total, "ledger")
    progress(total, total, "ledger")


@dataclass
class _BatchResult:
    erased: Counter  # category -> rows erased
    postponed: int  # rows that were past their date and are not any more (or are held)
    rows: int  # rows looked at
    failed: list[int] = field(default_factory=list)  # orders that could not be swept

    def add(self, other: _BatchResult) -> None:
        self.erased.update(other.erased)
        self.postponed += other.postponed
        self.rows += other.rows
        self.failed.extend(other.failed)


def _sweep_batch_or_orders(order_ids: list[int], *, now: datetime, today: date) -> _BatchResult:
    """One batch; if it fails (it is rolled back whole), its orders one by one, so one
    order's error stops neither its batch's other orders nor the sweep (R28). A failed
    order is logged with its id and the error's class only."""
    try:
        return _sweep_batch(order_ids, now=now, today=today)
    except Exception as exc:
        if len(order_ids) == 1:
            return _failed(order_ids[0], exc)
        logger.warning(
            "retention batch of %s orders (ids %s-%s) failed (%s); sweeping them one by one",
            len(order_ids),
            order_ids[0],
            order_ids[-1],
            type(exc).__name__,
        )
    result = _BatchResult(erased=Counter(), postponed=0, rows=0)
    for order_id in order_ids:
        try:
            result.add(_sweep_batch([order_id], now=now, today=today))
        except Exception as exc:
            result.add(_failed(order_id, exc))
    return result


def _failed(order_id: int, exc: Exception) -> _BatchResult:
    logger.error("retention sweep failed for order %s (%s)", order_id, type(exc).__name__)
    return _BatchResult(erased=Counter(), postponed=0, rows=0, failed=[order_id])


def _sweep_batch(order_ids: list[int], *, now: datetime, today: date) -> _BatchResult:
    """One batch of orders, one transaction: their ledgers recomputed (a late refund, a
    new hold), then everything of theirs that is past its date erased, whatever its
    category: each order once, unless a legal hold (R28) keeps it, asked again in SQL
    right before erasing. No row locks: closing a ledger row checks `erased_at IS NULL`
    again, so two sweeps at once never record an erasure twice, and erasing is
    idempotent."""
    with transaction.atomic():
        # `create`: a category that appeared after the last recompute (a withdrawal or a
        # claim made after delivery) gets its row now, and is erased with the rest.
        plan = ledger.plan_recompute(order_ids=order_ids, now=now, create=True)
        due = [
            (pk, order_id, category)
            for pk, order_id, category, keep_until in plan.open_rows
            if _is_past(keep_until, today)
        ]
        created_due = {
            (row.order_id, row.category)
            for row in plan.to_create
            if _is_past(row.keep_until, today)
        }
        ledger.apply_recompute(plan, now=now)
        if created_due:
            due += _created_rows(created_due)
        due, _held = erasure.split_held(due)
        erasure.erase_ledger_rows(rows=due, reason=REASONS, now=now, check_holds=False)
    reset_queries()  # with DEBUG on, Django keeps every statement in memory
    due_ids = {row[0] for row in due}
    postponed = sum(
        1
        for pk, _order_id, _category, keep_until in plan.open_rows
        if pk not in due_ids
        and (_is_past(plan.stored_until.get(pk), today) or _is_past(keep_until, today))
    )
    return _BatchResult(
        erased=Counter(category for _pk, _order_id, category in due),
        postponed=postponed,
        rows=len(due) + postponed,
    )


def _created_rows(keys: set[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """(id, order, category) of the open ledger rows just created for these keys."""
    order_ids = sorted({order_id for order_id, _code in keys})
    rows = PersonalDataRecord.objects.filter(
        ids_in(PersonalDataRecord, "order_id", order_ids),
        erased_at__isnull=True,
        category__in=sorted({code for _order_id, code in keys}),
    ).values_list("pk", "order_id", "category")
    return [row for row in rows.order_by() if (row[1], row[2]) in keys]


def _is_past(keep_until: date | None, today: date) -> bool:
    return keep_until is not None and keep_until < today


def _run_batches(
    work: Callable[[list[int]], _BatchResult], batches: Iterator[list[int]]
) -> Iterator[_BatchResult]:
    """`work(batch)` for every batch, results in the batches' order.

    On PostgreSQL, outside a transaction, `WORKERS` batches are swept at once, each by a
    thread on a connection of its own: the batches are different orders, so they touch
    different rows, and while one waits for the database another computes. Inside a
    transaction (tests) a second connection would not see the same data, and SQLite
    writes one transaction at a time: there the batches run one after the other."""
    if WORKERS < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for batch in batches:
            yield work(batch)
        return
    workers = _Workers(WORKERS, work)
    in_flight: deque[Future] = deque()
    try:
        for batch in batches:
            in_flight.append(workers.submit(batch))
            if len(in_flight) > WORKERS:  # one waiting behind the running ones
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    finally:
        for future in in_flight:
            future.cancel()
        workers.close()


class _Workers:
    """Threads that sweep batches, each on its own connection, closed when they stop."""

    def __init__(self, count: int, work: Callable[[list[int]], _BatchResult]) -> None:
        self._work = work
        self._language = translation.get_language()  # hold reasons are stored as shown
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"retention-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, batch: list[int]) -> Future:
        future: Future = Future()
        self._tasks.put((future, batch))
        return future

    def close(self) -> None:
        """Let the running batches finish, then stop (cancelled ones are skipped)."""
        for _thread in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        try:
            with translation.override(self._language):
                while (task := self._tasks.get()) is not None:
                    future, batch = task
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        future.set_result(self._work(batch))
                    except BaseException as exc:  # handed to the caller of result()
                        future.set_exception(exc)
        finally:
            connections.close_all()  # this thread's own connection


def _sweep_dated(fieldset, *, now: datetime, today: date, batch_size: int) -> int:
    """Rows with their own `keep_until` (consents, data-subject requests)."""
    model = fieldset.model
    updates = {
        name: eraser.expression(name, model._meta.get_field(name))
        for name, eraser in fieldset.fields.items()
    }
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
        reason = (
            ErasureReason.CONSENT_WITHDRAWN
            if fieldset.category == "consents"
            else ErasureReason.RETENTION
        )
        with transaction.atomic():
            pk_name = model._meta.pk.name
            model._base_manager.filter(ids_in(model, pk_name, [r[0] for r in rows])).update(
                **updates
            )
            ErasureRecord.objects.bulk_create(
                [
                    ErasureRecord(
                        order_id=row[1] if order_path else None,
                        category=fieldset.category,
                        reason=reason,
                        fields=names,
                        rows=1,
                        note=f"{fieldset.model_label} #{row[0]}"[:200],
                        erased_at=now,
                    )
                    for row in rows
                ],
                batch_size=2000,
            )
        erased += len(rows)
        reset_queries()
