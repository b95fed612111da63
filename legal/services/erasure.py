"""Erasing personal data in bulk (R29): declared fields are cleared or replaced by a fixed
marker with one UPDATE per model (and its django-simple-history table) for a whole batch of
orders; the non-personal facts (amounts, SKUs, dates, the postcode area) stay. Every
erasure leaves an `ErasureRecord` per order and category, without the erased values.

Never per-row saves: `QuerySet.update` writes no history rows and sends no signals, so
nothing re-creates a copy of what was just erased. The erasure records are written by the
database itself from the ledger rows being closed (INSERT ... SELECT), so 100,000 orders
cost a few statements per batch, not 100,000 inserts.

Each model is updated once per batch for all orders that need the same fields of it
erased (usually all of them: the orders of a batch differ in their consents, not in what
the order row holds), with the ids as one array parameter on PostgreSQL.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import connection, models, transaction
from django.utils import timezone

from legal import holds, registry
from legal.models import ErasureRecord, PersonalDataRecord
from legal.sql import ARRAY_SQL, id_list, ids_in

logger = logging.getLogger(__name__)

CHUNK = 2000  # ids per IN (...) list (SQLite: one placeholder each)
ARRAY_CHUNK = 20000  # ids per statement on PostgreSQL (one array parameter)

Row = tuple[int, int, str]  # ledger row id, order id, category
ModelKey = tuple[str, str, bool, bool]  # model label, order path, history, dated


def _chunks(ids: list[int], size: int | None = None) -> Iterable[list[int]]:
    if size is None:
        size = ARRAY_CHUNK if connection.vendor == "postgresql" else CHUNK
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


def _erasers_by_model(categories: Iterable[str]) -> dict[ModelKey, dict[str, dict]]:
    """{model key: {category: {field: eraser}}} of the order-scoped declarations."""
    wanted = set(categories)
    by_model: dict[ModelKey, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    for fieldset in registry.fieldsets():
        if fieldset.category in wanted and fieldset.order_path is not None:
            key = (fieldset.model_label, fieldset.order_path, fieldset.history, fieldset.dated)
            by_model[key][fieldset.category].update(fieldset.fields)
    return by_model


def _update_model(
    key: ModelKey, erasers: Mapping[str, registry.Eraser], order_ids: list[int], now: datetime
) -> int:
    """Erase these fields of one model (and its history copies) for these orders.

    Stored files (a FileField declared personal: claim photos, proofs of dispatch) are
    deleted from their storage after commit, not only their names (R28)."""
    label, path, history, dated = key
    fieldset = registry.FieldSet(
        category="", model_label=label, fields=erasers, order_path=path, history=history
    )
    targets = [fieldset.model]
    if fieldset.history_model is not None:
        targets.append(fieldset.history_model)
    updated = 0
    for model in targets:
        values = {
            name: eraser.expression(name, model._meta.get_field(name))
            for name, eraser in erasers.items()
        }
        if dated and model is fieldset.model:
            values["erased_at"] = now
        for chunk in _chunks(order_ids):
            _delete_files_after_commit(model, fieldset.model, erasers, path, chunk)
            updated += model._base_manager.filter(ids_in(model, path, chunk)).update(**values)
    return updated


def _file_fields(model: type[models.Model], names: Iterable[str]) -> list[models.FileField]:
    return [
        field
        for field in (model._meta.get_field(name) for name in names)
        if isinstance(field, models.FileField)
    ]


def _delete_files_after_commit(
    model: type[models.Model],
    owner: type[models.Model],
    erasers: Mapping[str, registry.Eraser],
    path: str,
    ids: list[int],
) -> None:
    """The stored files of these rows' personal FileFields, deleted once the erasure is
    committed (a rolled-back erasure keeps its files). `owner`: the model whose fields
    say where the files are stored (a history copy names the same storage's files, and
    may name one replaced since)."""
    fields = _file_fields(owner, erasers)
    if not fields:
        return
    files: set[tuple[models.FileField, str]] = set()
    for field in fields:
        names = (
            model._base_manager.filter(ids_in(model, path, ids))
            .exclude(**{field.name: ""})
            .exclude(**{f"{field.name}__isnull": True})
            .exclude(**{field.name: registry.MARKER})
            .values_list(field.name, flat=True)
            .distinct()
        )
        files.update((field, name) for name in names)
    if files:
        transaction.on_commit(functools.partial(delete_stored_files, sorted(files, key=_by_name)))


def _by_name(item: tuple[models.FileField, str]) -> tuple[str, str]:
    return item[0].name, item[1]


def delete_stored_files(files: Iterable[tuple[models.FileField, str]]) -> int:
    """Delete stored files through their field's storage; a file already gone is fine.
    Returns the files deleted. A failure is logged with the field only, never the name
    (which may carry personal data), and does not stop the others."""
    deleted = 0
    for field, name in files:
        try:
            if field.storage.exists(name):
                field.storage.delete(name)
                deleted += 1
        except Exception as exc:  # one file must not stop the erasure of the others
            logger.error(
                "could not delete an erased file of %s.%s (%s)",
                field.model._meta.label,
                field.name,
                type(exc).__name__,
            )
    return deleted


def _erase_orders(categories_by_order: Mapping[int, Iterable[str]], now: datetime) -> int:
    """Erase, per order, the declared fields of its categories: one UPDATE per model
    (and history model) for the orders needing the same fields of it."""
    by_codes: dict[frozenset[str], list[int]] = defaultdict(list)
    for order_id, codes in categories_by_order.items():
        by_codes[frozenset(codes)].append(order_id)
    updated = 0
    # Models in declaration order: the consent's own erasure (by its order link) comes
    # before the identity's, which clears that link.
    for key, per_category in _erasers_by_model(set().union(*by_codes)).items():
        model_codes = frozenset(per_category)
        groups: dict[frozenset[str], list[int]] = defaultdict(list)
        for codes, order_ids in by_codes.items():
            relevant = codes & model_codes
            if relevant:
                groups[relevant].extend(order_ids)
        for codes, order_ids in groups.items():
            erasers: dict[str, registry.Eraser] = {}
            for code in sorted(codes):
                erasers.update(per_category[code])
            updated += _update_model(key, erasers, sorted(order_ids), now)
    return updated


def erase_fields(*, categories: Iterable[str], order_ids: list[int], now: datetime) -> int:
    """Erase every declared order-scoped field of `categories` for these orders.

    Idempotent: erasing twice writes the same values. Returns the rows updated."""
    codes = frozenset(categories)
    return _erase_orders(dict.fromkeys(order_ids, codes), now)


# What a legal hold does not keep: withdrawn marketing consents go within 3 working days
# whatever else the order is waiting for (R28, IP15); the hold keeps the order's data.
NOT_HELD = frozenset({"consents"})


def split_held(rows: Iterable[Row]) -> tuple[list[Row], list[Row]]:
    """(rows that may be erased, rows whose order is held now): the hold rule of R28,
    asked of `legal.holds` in one query for the whole batch."""
    rows = list(rows)
    held = holds.held_order_ids({order_id for _pk, order_id, code in rows if code not in NOT_HELD})
    if not held:
        return rows, []
    free, kept = [], []
    for row in rows:
        (kept if row[1] in held and row[2] not in NOT_HELD else free).append(row)
    return free, kept


def erase_ledger_rows(
    *,
    rows: Iterable[Row],
    reason: str | Mapping[str, str],
    now: datetime | None = None,
    request=None,
    check_holds: bool = True,
) -> int:
    """Erase what these ledger rows cover, record it and close the rows (R29).

    Each model is updated once for the orders needing the same fields of it erased
    (identity, contact and delivery in one UPDATE of the order). `reason`: one for all,
    or one per category. Rows of an order under a legal hold (R28: an open claim or
    withdrawal, an unsettled refund, a restriction, ...) are left as they are, unless
    the caller has just asked (`check_holds=False`). Returns the number of (order,
    category) pairs erased. Runs in one transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        if check_holds:
            rows, _held = split_held(rows)
        by_order: dict[int, set[str]] = defaultdict(set)
        pks = []
        for pk, order_id, category in rows:
            by_order[order_id].add(category)
            pks.append(pk)
        if not pks:
            return 0
        erased = 0
        _erase_orders(by_order, now)
        pks.sort()
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

    def reason_of(code: str) -> str:
        return reason if isinstance(reason, str) else reason[code]

    # Identifiers are quoted by the backend; every value is a query parameter.
    if connection.vendor == "postgresql":
        # The fields and reason of each category are one row of a VALUES list joined to
        # the closed rows: the JSON is parsed once per category, not once per row.
        kinds = ", ".join(["(%s, CAST(%s AS jsonb), %s)"] * len(categories))
        kind_params = [
            value
            for code in categories
            for value in (code, json.dumps(names[code]), reason_of(code))
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH closed AS (UPDATE {ledger_table} SET {quote('erased_at')} = %s "  # noqa: S608
                f"WHERE {quote('id')} = ANY({ARRAY_SQL}) AND {quote('erased_at')} IS NULL "
                f"RETURNING {quote('order_id')}, {quote('category')}) "
                f"INSERT INTO {erasure_table} ({columns}) "
                f"SELECT closed.{quote('order_id')}, closed.{quote('category')}, "
                f"kinds.fields, kinds.reason, %s, 0, '', %s "
                f"FROM closed JOIN (VALUES {kinds}) AS kinds (category, fields, reason) "
                f"ON kinds.category = closed.{quote('category')}",
                [stamp, id_list(pks), stamp, request_id, *kind_params],
            )
            return cursor.rowcount
    fields_case, reason_case, case_params = [], [], []
    for code in categories:
        fields_case.append("WHEN %s THEN %s")
        case_params += [code, json.dumps(names[code])]
    for code in categories:
        reason_case.append("WHEN %s THEN %s")
        case_params += [code, reason_of(code)]
    fields_sql = f"CASE {quote('category')} {' '.join(fields_case)} END"
    reason_sql = f"CASE {quote('category')} {' '.join(reason_case)} END"
    in_pks = ", ".join(["%s"] * len(pks))
    select = (
        f"SELECT {quote('order_id')}, {quote('category')}, {fields_sql}, {reason_sql}, "
        f"%s, 0, '', %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {erasure_table} ({columns}) {select} FROM {ledger_table} "
            f"WHERE {quote('id')} IN ({in_pks}) AND {quote('erased_at')} IS NULL",
            [*case_params, stamp, request_id, *pks],
        )
        cursor.execute(
            f"UPDATE {ledger_table} SET {quote('erased_at')} = %s "  # noqa: S608
            f"WHERE {quote('id')} IN ({in_pks}) AND {quote('erased_at')} IS NULL",
            [stamp, *pks],
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
