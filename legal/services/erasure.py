"""Erasing personal data in bulk (R29): declared fields are cleared or replaced by a fixed
marker with one UPDATE per model (and its django-simple-history table) for a whole batch of
orders; the non-personal facts (amounts, SKUs, dates, the postcode area) stay. Every
erasure leaves an `ErasureRecord` per order and category, without the erased values.

Never per-row saves: `QuerySet.update` writes no history rows and sends no signals, so
nothing re-creates a copy of what was just erased. The erasure records are written by the
database itself from the ledger rows being closed (INSERT ... SELECT), so 100,000 orders
cost a few statements per batch, not 100,000 inserts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from legal import registry
from legal.models import ErasureRecord, PersonalDataRecord
from legal.sql import ARRAY_SQL, id_list, ids_in

CHUNK = 2000  # ids per IN (...) list

Row = tuple[int, int, str]  # ledger row id, order id, category


def _chunks(ids: list[int], size: int = CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def field_names(categories: Iterable[str]) -> dict[str, list[str]]:
    """{category: ["app.Model.field", ...]}: what an erasure record lists."""
    return {
        code: [
            f"{fieldset.model_label}.{name}"
            for fieldset in registry.fieldsets(category=code)
            for name in fieldset.fields
        ]
        for code in categories
    }


def erase_fields(*, categories: Iterable[str], order_ids: list[int], now: datetime) -> int:
    """Erase every declared order-scoped field of `categories` for these orders.

    Idempotent: erasing twice writes the same values. Returns the rows updated."""
    categories = set(categories)
    by_model: dict[tuple[str, str, bool, bool], dict[str, registry.Eraser]] = defaultdict(dict)
    for fieldset in registry.fieldsets():
        if fieldset.category in categories and fieldset.order_path is not None:
            key = (fieldset.model_label, fieldset.order_path, fieldset.history, fieldset.dated)
            by_model[key].update(fieldset.fields)
    updated = 0
    for (label, path, history, dated), erasers in by_model.items():
        fieldset = registry.FieldSet(
            category="", model_label=label, fields=erasers, order_path=path, history=history
        )
        updates = {name: eraser.expression(name) for name, eraser in erasers.items()}
        targets = [fieldset.model]
        if fieldset.history_model is not None:
            targets.append(fieldset.history_model)
        for model in targets:
            values = dict(updates)
            if dated and model is fieldset.model:
                values["erased_at"] = now
            for chunk in _chunks(order_ids):
                updated += model._base_manager.filter(ids_in(model, path, chunk)).update(**values)
    return updated


def erase_ledger_rows(
    *,
    rows: Iterable[Row],
    reason: str | Mapping[str, str],
    now: datetime | None = None,
    request=None,
) -> int:
    """Erase what these ledger rows cover, record it and close the rows (R29).

    Orders needing the same categories are erased together (usually identity, contact and
    delivery in one UPDATE of the order). `reason`: one for all, or one per category.
    Returns the number of (order, category) pairs erased. Runs in one transaction."""
    now = now or timezone.now()
    by_order: dict[int, set[str]] = defaultdict(set)
    pks_by_order: dict[int, list[int]] = defaultdict(list)
    for pk, order_id, category in rows:
        by_order[order_id].add(category)
        pks_by_order[order_id].append(pk)
    groups: dict[frozenset[str], list[int]] = defaultdict(list)
    for order_id, categories in by_order.items():
        groups[frozenset(categories)].append(order_id)
    erased = 0
    with transaction.atomic():
        for categories, order_ids in groups.items():
            order_ids.sort()
            erase_fields(categories=categories, order_ids=order_ids, now=now)
        pks = sorted(pk for pks in pks_by_order.values() for pk in pks)
        categories = sorted({c for cs in by_order.values() for c in cs})
        for chunk in _chunks(pks):
            erased += _close_rows(
                pks=chunk,
                categories=categories,
                reason=reason,
                now=now,
                request_id=request.pk if request is not None else None,
            )
    return erased


def erase_order_data(
    *,
    items: Mapping[int, Iterable[str]],
    reason: str | Mapping[str, str],
    now: datetime | None = None,
    request=None,
) -> int:
    """Erase categories of orders ({order id: categories}) through their ledger rows."""
    wanted = {(order_id, code) for order_id, codes in items.items() for code in codes}
    if not wanted:
        return 0
    rows = [
        (pk, order_id, category)
        for pk, order_id, category in PersonalDataRecord.objects.filter(
            order_id__in=list(items), erased_at__isnull=True
        )
        .order_by()
        .values_list("pk", "order_id", "category")
        if (order_id, category) in wanted
    ]
    return erase_ledger_rows(rows=rows, reason=reason, now=now, request=request)


def _close_rows(
    *,
    pks: list[int],
    categories: list[str],
    reason: str | Mapping[str, str],
    now: datetime,
    request_id: int | None,
) -> int:
    """Erasure records from the ledger rows, then the rows marked erased (one statement
    on PostgreSQL: UPDATE ... RETURNING feeding the INSERT)."""
    names = field_names(categories)
    quote = connection.ops.quote_name
    fields_case, reason_case, case_params = [], [], []
    for code in categories:
        fields_case.append("WHEN %s THEN %s")
        case_params += [code, json.dumps(names[code])]
    for code in categories:
        reason_case.append("WHEN %s THEN %s")
        case_params += [code, reason if isinstance(reason, str) else reason[code]]
    fields_sql = f"CASE {quote('category')} {' '.join(fields_case)} END"
    if connection.vendor == "postgresql":
        fields_sql = f"CAST({fields_sql} AS jsonb)"
    reason_sql = f"CASE {quote('category')} {' '.join(reason_case)} END"
    columns = ", ".join(
        quote(c)
        for c in (
            "order_id",
            "category",
            "fields",
            "reason",
            "erased_at",
            "rows",
            "note",
            "request_id",
        )
    )
    erasure_table = quote(ErasureRecord._meta.db_table)
    ledger_table = quote(PersonalDataRecord._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    if connection.vendor == "postgresql":
        in_pks, pk_params = f"SELECT unnest({ARRAY_SQL})", [id_list(pks)]
    else:
        in_pks, pk_params = ", ".join(["%s"] * len(pks)), pks
    select = (
        f"SELECT {quote('order_id')}, {quote('category')}, {fields_sql}, {reason_sql}, "
        f"%s, 0, '', %s"
    )
    # Identifiers are quoted by the backend; every value is a query parameter.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH closed AS (UPDATE {ledger_table} SET {quote('erased_at')} = %s "  # noqa: S608
                f"WHERE {quote('id')} IN ({in_pks}) AND {quote('erased_at')} IS NULL "
                f"RETURNING {quote('order_id')}, {quote('category')}) "
                f"INSERT INTO {erasure_table} ({columns}) {select} FROM closed",
                [stamp, *pk_params, *case_params, stamp, request_id],
            )
            return cursor.rowcount
        cursor.execute(
            f"INSERT INTO {erasure_table} ({columns}) {select} FROM {ledger_table} "
            f"WHERE {quote('id')} IN ({in_pks}) AND {quote('erased_at')} IS NULL",
            [*case_params, stamp, request_id, *pk_params],
        )
        cursor.execute(
            f"UPDATE {ledger_table} SET {quote('erased_at')} = %s "  # noqa: S608
            f"WHERE {quote('id')} IN ({in_pks}) AND {quote('erased_at')} IS NULL",
            [stamp, *pk_params],
        )
        return cursor.rowcount


def record_erasure(
    *,
    category: str,
    reason: str,
    fields: list[str],
    rows: int,
    note: str = "",
    order_id: int | None = None,
    now: datetime | None = None,
    request=None,
) -> ErasureRecord:
    """An erasure that is not per order (outbox messages, unmatched bank entries)."""
    return ErasureRecord.objects.create(
        order_id=order_id,
        category=category,
        reason=reason,
        fields=fields,
        rows=rows,
        note=note[:200],
        erased_at=now or timezone.now(),
        request=request,
    )
