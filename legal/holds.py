"""Legal holds (R28): what keeps an order's personal data from the retention sweep and from
erasure requests. The one place that says whether an order is held; the ledger
(`legal.services.ledger`), the sweep (`legal.services.retention`) and erasure
(`legal.services.erasure`, which erasure requests go through) all ask it.

An order is held while it has any of these:

- an open conformity claim or dispute (staff hold): and, once it closes, for 3 more years
  (Commercial Law §406);
- an open withdrawal (the statement is being performed: goods, inspection, refund);
- an unsettled refund (pending, ready, approved or sent: neither settled nor failed);
- a standing restriction of processing (GDPR Art 18): the data is only stored.

Each kind of hold is declared once, as rows of a model (an app above `legal` declares its
own from its `personal_data.py`, so `legal` imports no app above it):

    from legal import holds

    holds.declare(
        "withdrawal", "returns.Withdrawal", order_path="order_id",
        open=lambda: Q(status__in=OPEN_WITHDRAWAL_STATUSES),
        opened_at="received_at", reason="open withdrawal #{pk}", fields=["pk"],
    )

From a declaration come both a SQL condition (`held_q`: EXISTS subqueries, for the
sweep's bulk statements; `held_order_ids` asks it for a batch of orders in one query)
and the holds with their reasons and dates (`holds_for`, for the ledger and the answer to
an erasure request). Declared with `closed_at`, a closed row keeps holding until 3 years
after it closed (claims, disputes); without it, the hold ends with the row's open state.

Older code may still `register` a provider: a function yielding `Hold`s for a list of
order ids. Providers are asked in Python, a batch at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from legal import rules
from shop.calendar import riga_date


@dataclass(frozen=True)
class Hold:
    order_id: int
    reason: str
    opened_at: datetime
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def as_rule(self) -> rules.Hold:
        return rules.Hold(
            reason=self.reason,
            opened_on=riga_date(self.opened_at),
            closed_on=riga_date(self.closed_at) if self.closed_at else None,
        )


@dataclass(frozen=True)
class HoldKind:
    """Rows of `model_label` that hold their order (see `declare`)."""

    name: str
    model_label: str
    order_path: str
    open: Callable[[], Q]
    opened_at: str
    reason: str | Callable[[Mapping[str, Any]], str]
    closed_at: str | None = None
    fields: tuple[str, ...] = ()

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)

    def rows(self) -> models.QuerySet:
        return self.model._base_manager.all()

    def open_rows(self) -> models.QuerySet:
        return self.rows().filter(self.open())

    def describe(self, values: Mapping[str, Any]) -> str:
        if callable(self.reason):
            return str(self.reason(values))[:300]
        return self.reason.format(**values)[:300]


Provider = Callable[[list[int] | None], Iterable[Hold]]
_providers: list[Provider] = []
_kinds: dict[str, HoldKind] = {}


def declare(
    name: str,
    model: str,
    *,
    order_path: str,
    open: Callable[[], Q],
    opened_at: str,
    reason: str | Callable[[Mapping[str, Any]], str],
    closed_at: str | None = None,
    fields: Sequence[str] = (),
) -> HoldKind:
    """Rows of `model` ("app.Model") matching `open()` hold the order at `order_path`.

    `reason`: a format string over `fields` (or a function of their values) naming the
    hold in the ledger and in the answer to an erasure request. `closed_at`: a row that
    is no longer open but has this time set keeps holding until 3 years after it (R28).
    Declaring a name again replaces it."""
    kind = HoldKind(
        name=name,
        model_label=model,
        order_path=order_path,
        open=open,
        opened_at=opened_at,
        reason=reason,
        closed_at=closed_at,
        fields=tuple(fields),
    )
    _kinds[name] = kind
    return kind


def kinds() -> list[HoldKind]:
    return list(_kinds.values())


def register(provider: Provider) -> Provider:
    """Add a provider of holds; usable as a decorator. Registering twice is harmless."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


def unregister(provider: Provider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def providers() -> list[Provider]:
    return list(_providers)


# --- Asking ------------------------------------------------------------------------------


def held_q(order_ref: str = "pk") -> Q:
    """SQL: the order at `order_ref` (an outer query's order id) is held now, by any
    declared kind: one EXISTS subquery per kind, each on an indexed foreign key."""
    condition = Q()
    for kind in _kinds.values():
        rows = kind.open_rows().filter(**{kind.order_path: OuterRef(order_ref)})
        condition |= Q(Exists(rows))
    return condition


def held_order_ids(order_ids: Iterable[int]) -> set[int]:
    """Which of these orders are held now: one query (EXISTS per kind) for the batch,
    plus any registered provider."""
    from legal.sql import ids_in
    from orders.models import Order

    ids = sorted(set(order_ids))
    if not ids:
        return set()
    held: set[int] = set()
    if _kinds:
        for start in range(0, len(ids), 20000):
            chunk = ids[start : start + 20000]
            held.update(
                Order.objects.filter(ids_in(Order, "id", chunk))
                .filter(held_q("pk"))
                .values_list("pk", flat=True)
            )
    for provider in _providers:
        held.update(h.order_id for h in provider(ids) if h.is_open and h.order_id in ids)
    return held


def is_held(order_id: int) -> bool:
    return order_id in held_order_ids([order_id])


def _kind_holds(kind: HoldKind, order_ids: list[int] | None) -> Iterable[Hold]:
    """The holds of one kind: open rows, and (with `closed_at`) closed ones."""
    from legal.sql import ids_in

    rows = kind.rows()
    if order_ids is not None:
        rows = rows.filter(ids_in(kind.model, kind.order_path, order_ids))
    is_open = ExpressionWrapper(kind.open(), output_field=BooleanField())
    wanted = kind.open()
    columns = [kind.order_path, kind.opened_at, *kind.fields]
    if kind.closed_at:
        wanted |= Q(**{f"{kind.closed_at}__isnull": False})
        columns.append(kind.closed_at)
    values = (
        rows.filter(wanted)
        .annotate(_hold_open=is_open)
        .order_by()
        .values(*dict.fromkeys([*columns, "_hold_open"]))
        .distinct()
    )
    for row in values.iterator(chunk_size=2000):
        held_open = bool(row["_hold_open"])
        closed = None if held_open or not kind.closed_at else row[kind.closed_at]
        if not held_open and closed is None:
            continue
        yield Hold(
            order_id=row[kind.order_path],
            reason=kind.describe(row),
            opened_at=row[kind.opened_at],
            closed_at=closed,
        )


def holds_for(order_ids: Iterable[int] | None) -> dict[int, list[Hold]]:
    """{order id: its holds}, open and (claims, disputes) closed, with their reasons; a
    query per kind for the batch. `None` asks for every held order."""
    wanted = None if order_ids is None else sorted(set(order_ids))
    found: dict[int, list[Hold]] = defaultdict(list)
    if wanted is not None and not wanted:
        return found
    allowed = None if wanted is None else set(wanted)
    for kind in _kinds.values():
        for start in range(0, len(wanted or [None]), 20000):
            chunk = None if wanted is None else wanted[start : start + 20000]
            for hold in _kind_holds(kind, chunk):
                found[hold.order_id].append(hold)
    for provider in _providers:
        for hold in provider(wanted):
            if allowed is None or hold.order_id in allowed:
                found[hold.order_id].append(hold)
    return found


def open_hold_order_ids() -> set[int]:
    """Every order held now: per kind, the orders of its open rows (a few, through the
    kind's own indexes; not a pass over every order)."""
    held: set[int] = set()
    for kind in _kinds.values():
        held.update(kind.open_rows().order_by().values_list(kind.order_path, flat=True).distinct())
    for provider in _providers:
        held.update(h.order_id for h in provider(None) if h.is_open)
    return held


# --- The kinds `legal` itself knows ------------------------------------------------------


def _staff_reason(values: Mapping[str, Any]) -> str:
    from legal.models import HoldReason

    reason = str(HoldReason(values["reason"]).label)
    return f"{reason}: {values['note']}" if values["note"] else reason


# Holds placed by staff (disputes, authority requests): 3 years after they close.
declare(
    "staff",
    "legal.LegalHold",
    order_path="order_id",
    open=lambda: Q(closed_at__isnull=True),
    opened_at="opened_at",
    closed_at="closed_at",
    reason=_staff_reason,
    fields=["reason", "note"],
)


def _unsettled_refund() -> Q:
    """R28: a refund neither settled nor failed: the money is still on its way (the open
    statuses of orders' refund state machine)."""
    from orders.models import OPEN_REFUND_STATUSES

    return Q(status__in=OPEN_REFUND_STATUSES)


declare(
    "refund",
    "orders.Refund",
    order_path="order_id",
    open=_unsettled_refund,
    opened_at="created_at",
    reason="unsettled refund #{pk}",
    fields=["pk"],
)
# R28, GDPR Art 18: a standing restriction: the data is only stored, erased by no one.
declare(
    "restriction",
    "legal.PersonalDataRecord",
    order_path="order_id",
    open=lambda: Q(restricted_at__isnull=False, erased_at__isnull=True),
    opened_at="restricted_at",
    reason="restriction of processing (GDPR Art 18)",
)
