"""The per-order personal-data ledger (R26): per category, purpose, basis and the date the
data is kept until, recomputed whenever the facts of the order change.

Who calls what:

- `order_placed(order=..., consents=...)`: checkout, in its transaction (one query).
- `recompute_ledger(order_ids=[...])`: on cancellation (orders.services.lifecycle), on
  delivery (`order_delivered`; the courier webhook's `order_delivered_later` does it after
  commit, through the outbox), when a claim or dispute opens or closes, when a consent is
  withdrawn, and by the retention sweep right before it erases anything. Idempotent;
  a constant number of queries for any number of orders.

A row's `keep_until` is empty while the order is being performed or a legal hold is open;
the sweep (legal.services.retention) erases rows whose date is past.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import override

from legal import holds as legal_holds
from legal import registry, rules
from legal.models import Consent, PersonalDataRecord
from legal.policy import CATEGORIES, ORDER_CATEGORIES, Category
from legal.services.optin import ask_confirmation_for_order
from legal.sql import ids_in
from orders.models import BankEntry, Invoice, Order, Payment, Refund
from shop import outbox
from shop.calendar import RIGA, riga_date

OPEN_STATUSES = {"placed", "confirmed", "paid", "shipped"}
CONSENTS = "consents"
PLAN_CHUNK = 2500  # orders whose facts and rows are held in memory at once
LEDGER_TOPIC = "ledger.recompute"
BATCH = 1000


@functools.cache
def _purpose(code: str) -> str:
    """The purpose as stored on the row (English, as a record; shown translated)."""
    with override("en"):
        return str(CATEGORIES[code].purpose)[:300]


def applicable_categories() -> list[Category]:
    """Order categories with something to hold: declared fields, a sweeper or a
    presence check (claims appear once the returns app declares them)."""
    with_fields = {f.category for f in registry.fieldsets() if f.order_path is not None}
    with_sweeper = {s.category for s in registry.sweepers()}
    with_presence = set(registry.presence_checks())
    return [
        c
        for c in ORDER_CATEGORIES
        if c.code in with_fields or c.code in with_sweeper or c.code in with_presence
    ]


def order_placed(*, order: Order, consents: Mapping[str, bool] | None = None) -> None:
    """R26: the first ledger of a new order, in the checkout transaction (one query).

    Everything is kept while the contract is performed, so no date yet; the consents row
    appears when a consent was given."""
    now = timezone.now()
    checks = registry.presence_checks()
    rows = []
    for category in applicable_categories():
        if category.code == CONSENTS:
            if not any((consents or {}).values()):
                continue
        elif category.code in checks:
            continue  # nothing of that kind exists for a new order (claims, withdrawals)
        rows.append(
            PersonalDataRecord(
                order=order,
                category=category.code,
                purpose=_purpose(category.code),
                basis=category.basis,
                keep_until=None,
                computed_at=now,
            )
        )
    PersonalDataRecord.objects.bulk_create(rows)
    if any((consents or {}).values()):
        ask_confirmation_for_order(order=order)  # R31: anyone can type any address


def order_delivered(*, order_id: int) -> None:
    """Recompute now, after the order's delivery time was saved (R14b)."""
    recompute_ledger(order_ids=[order_id])


def order_delivered_later(*, order_id: int) -> None:
    """The same, after commit, through the outbox (one INSERT in the caller's transaction):
    for the courier webhook, which should not spend a dozen queries on it. Until the
    message is delivered (seconds) the rows still say "kept while performed", which keeps
    more, never less; the retention sweep recomputes before it erases anything."""
    outbox.publish(LEDGER_TOPIC, {"order_ids": [order_id]})


@outbox.handler(LEDGER_TOPIC)
def _recompute_from_outbox(payload: dict, message) -> None:
    recompute_ledger(order_ids=payload["order_ids"])


def _last_day(moments: Iterable[datetime | date | None]) -> date | None:
    """The latest Riga day of these moments (days, or timestamps from the event sources;
    None skipped). The Riga day of a timestamp only grows with it, so only the latest
    timestamp is converted."""
    last_moment: datetime | None = None
    last_day: date | None = None
    for moment in moments:
        if moment is None:
            continue
        if isinstance(moment, datetime):
            if last_moment is None or moment > last_moment:
                last_moment = moment
        elif last_day is None or moment > last_day:
            last_day = moment
    if last_moment is not None:
        moment_day = riga_date(last_moment)
        if last_day is None or moment_day > last_day:
            last_day = moment_day
    return last_day


def _riga_day(name: str) -> TruncDate:
    """The Riga calendar day of a timestamp column, computed by the database (R0.2): the
    sweep reads hundreds of thousands of them, and a date is cheaper to read than a
    timestamp to read and convert."""
    return TruncDate(name, tzinfo=RIGA)


def _latest_per_order(model, order_ids: list[int], *fields) -> dict[int, tuple]:
    """{order id: (latest of each field)} for the order's rows of `model`."""
    aggregates = {f"latest_{i}": Max(name) for i, name in enumerate(fields)}
    return {
        row[0]: row[1:]
        for row in model.objects.filter(ids_in(model, "order_id", order_ids))
        .order_by()
        .values("order_id")
        .annotate(**aggregates)
        .values_list("order_id", *aggregates)
    }


ORDER_MOMENTS = ("placed_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at", "closed_at")


def gather_facts(order_ids: list[int]) -> dict[int, rules.OrderFacts]:
    """The facts R28 depends on, for many orders in a fixed number of queries."""
    if not order_ids:
        return {}
    extra_events: dict[int, list] = defaultdict(list)
    for source in registry.event_sources():
        for order_id, moment in source(order_ids).items():
            extra_events[order_id].append(moment)
    extra_years: dict[int, list[int]] = defaultdict(list)
    for source in registry.accounting_sources():
        for order_id, year in source(order_ids).items():
            extra_years[order_id].append(year)
    holds = legal_holds.holds_for(order_ids)
    # Riga days throughout (the latest day of several moments is the day of the latest).
    invoices = _latest_per_order(Invoice, order_ids, "issue_date")
    payments = _latest_per_order(Payment, order_ids, _riga_day("received_at"))
    bank = _latest_per_order(BankEntry, order_ids, "booking_date")
    refunds = _latest_per_order(
        Refund,
        order_ids,
        *(_riga_day(name) for name in ("created_at", "sent_at", "settled_at", "failed_at")),
    )
    days = {f"{name}_day": _riga_day(name) for name in ORDER_MOMENTS}
    rows = (
        Order.objects.filter(ids_in(Order, "id", order_ids))
        .order_by()
        .annotate(**days)
        .values_list("pk", "status", *days)
    )
    none = (None,)
    no_holds: tuple[rules.Hold, ...] = ()
    facts = {}
    for pk, status, placed, paid, shipped, delivered, cancelled, closed in rows:
        paid_last = payments.get(pk, none)[0]
        refund_days = refunds.get(pk, ())
        # The latest money day gives the year (a year only grows with its day).
        money_day = _last_day(
            (invoices.get(pk, none)[0], paid_last, bank.get(pk, none)[0], *refund_days)
        )
        years = extra_years.get(pk)
        if money_day is not None:
            years = [money_day.year, *years] if years else [money_day.year]
        events = [placed, paid, shipped, delivered, cancelled, closed, paid_last, *refund_days]
        if pk in extra_events:
            events += extra_events[pk]
        order_holds = holds.get(pk)
        facts[pk] = rules.OrderFacts(
            placed_on=placed,
            is_open=status in OPEN_STATUSES,
            delivered_on=delivered,
            closed_on=_last_day((cancelled, closed)) if delivered is None else closed,
            last_event_on=_last_day(events),
            accounting_year=max(years) if years else None,
            holds=tuple(h.as_rule() for h in order_holds) if order_holds else no_holds,
        )
    return facts


def _consent_states(order_ids: list[int]) -> dict[int, tuple[int, date | None]]:
    """{order id: (active consents, latest keep_until of withdrawn ones)}."""
    return {
        order_id: (active, until)
        for order_id, active, until in Consent.objects.filter(
            ids_in(Consent, "order_id", order_ids)
        )
        .order_by()
        .values("order_id")
        .annotate(
            active=Count("pk", filter=Q(withdrawn_at__isnull=True, erased_at__isnull=True)),
            until=Max("keep_until"),
        )
        .values_list("order_id", "active", "until")
    }


def _hold_note(facts: rules.OrderFacts) -> str:
    open_holds = [h.reason for h in facts.holds if h.is_open]
    return "; ".join(open_holds)[:300]


Entry = tuple[date | None, str, str]  # keep_until, basis, hold note


def compute(order_ids: list[int], *, check_presence: bool = True) -> dict[tuple[int, str], Entry]:
    """What each order's ledger should say now, keyed by (order, category).

    Without `check_presence`, every applicable category is computed for every order
    (to verify rows that exist: cheaper than asking each app what is present)."""
    facts = gather_facts(order_ids)
    categories = applicable_categories()
    codes = {c.code for c in categories}
    present = {}
    if check_presence:
        present = {
            code: check(order_ids)
            for code, check in registry.presence_checks().items()
            if code in codes
        }
    consents = _consent_states(order_ids) if CONSENTS in codes else {}
    wanted: dict[tuple[int, str], Entry] = {}
    for order_id, order_facts in facts.items():
        note = _hold_note(order_facts)
        dates: dict[str, date | None] = {}  # per rule: identity, contact, ... share one
        for category in categories:
            code = category.code
            if code in present and order_id not in present[code]:
                continue
            if code == CONSENTS:
                # No consent linked any more (the link goes with the buyer's identity):
                # nothing of the kind is left, the row is done.
                active, until = consents.get(order_id, (0, order_facts.placed_on))
                wanted[(order_id, code)] = (None if active else until, category.basis, "")
            else:
                if category.rule not in dates:
                    dates[category.rule] = rules.order_data_until(category.rule, order_facts)
                wanted[(order_id, code)] = (
                    dates[category.rule],
                    category.basis if order_facts.is_open else category.basis_after,
                    note,
                )
    return wanted


def recompute_ledger(*, order_ids: Iterable[int], now: datetime | None = None) -> int:
    """R26: bring the orders' ledgers in line with their facts; returns rows changed.

    Rows already erased stay as they are. Safe to call as often as wanted."""
    ids = sorted(set(order_ids))
    now = now or timezone.now()
    changed = 0
    for start in range(0, len(ids), BATCH):
        changed += _recompute_batch(ids[start : start + BATCH], now)[0]
    return changed


def recompute_and_read(*, order_ids: list[int], now: datetime) -> list[tuple]:
    """Bring the orders' existing rows in line with their facts, then return the open
    (not erased) ones as (id, order, category, keep_until): what the retention sweep
    erases from. Creates no rows (checkout, delivery and the claims work do that)."""
    plan = plan_recompute(order_ids=order_ids, now=now, create=False)
    apply_recompute(plan, now=now)
    return plan.open_rows


@dataclass
class RecomputePlan:
    """What recomputing some orders' ledgers writes, found without writing anything: the
    retention sweep writes it in the same transaction as the erasure it decides."""

    order_ids: list[int]
    to_create: list[PersonalDataRecord] = field(default_factory=list)
    changes: dict[Entry, list[int]] = field(default_factory=dict)  # new values -> row ids
    # (id, order, category, keep_until) of the open rows, with their new dates
    open_rows: list[tuple] = field(default_factory=list)
    stored_until: dict[int, date | None] = field(default_factory=dict)  # id -> date before

    @property
    def changed(self) -> int:
        return len(self.to_create) + sum(len(pks) for pks in self.changes.values())


def plan_recompute(
    *, order_ids: Iterable[int], now: datetime, create: bool = True
) -> RecomputePlan:
    """Read the facts and the ledger rows of these orders; write nothing (`create`:
    plan rows for categories that have none yet). A constant number of queries per
    `PLAN_CHUNK` orders, so what is held in memory at once stays bounded."""
    ids = sorted(set(order_ids))
    plan = RecomputePlan(order_ids=ids)
    for start in range(0, len(ids), PLAN_CHUNK):
        _plan_chunk(plan, ids[start : start + PLAN_CHUNK], now=now, create=create)
    return plan


def _plan_chunk(plan: RecomputePlan, ids: list[int], *, now: datetime, create: bool) -> None:
    wanted = compute(ids, check_presence=create)
    rows = PersonalDataRecord.objects.filter(ids_in(PersonalDataRecord, "order_id", ids))
    if not create:
        rows = rows.filter(erased_at__isnull=True)  # erased rows stay as they are
    existing = {
        (order_id, category): (pk, (keep_until, basis, hold_note), erased_at)
        for pk, order_id, category, keep_until, basis, hold_note, erased_at in (
            rows.order_by().values_list(
                "pk", "order_id", "category", "keep_until", "basis", "hold_note", "erased_at"
            )
        )
    }
    changes = plan.changes
    for key, entry in wanted.items():
        current = existing.get(key)
        if current is None:
            if not create:
                continue
            order_id, code = key
            plan.to_create.append(
                PersonalDataRecord(
                    order_id=order_id,
                    category=code,
                    purpose=_purpose(code),
                    basis=entry[1],
                    keep_until=entry[0],
                    hold_note=entry[2],
                    computed_at=now,
                )
            )
            continue
        if current[2] is not None:
            continue  # erased
        if current[1] != entry:
            changes.setdefault(entry, []).append(current[0])
        plan.open_rows.append((current[0], key[0], key[1], entry[0]))
        plan.stored_until[current[0]] = current[1][0]
    for key, (pk, values, erased_at) in existing.items():
        if erased_at is None and key not in wanted:
            plan.open_rows.append((pk, key[0], key[1], values[0]))  # a category no longer applies
            plan.stored_until[pk] = values[0]


def apply_recompute(plan: RecomputePlan, *, now: datetime) -> int:
    """Write what `plan_recompute` found; returns the rows created or changed."""
    if plan.to_create:
        PersonalDataRecord.objects.bulk_create(
            plan.to_create, batch_size=2000, ignore_conflicts=True
        )
    for (keep_until, basis, hold_note), pks in plan.changes.items():
        PersonalDataRecord.objects.filter(ids_in(PersonalDataRecord, "id", pks)).update(
            keep_until=keep_until, basis=basis, hold_note=hold_note, computed_at=now
        )
    return plan.changed


def _recompute_batch(order_ids: list[int], now: datetime) -> tuple[int, list[tuple]]:
    plan = plan_recompute(order_ids=order_ids, now=now)
    return apply_recompute(plan, now=now), plan.open_rows
