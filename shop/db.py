"""Small database helpers the ORM lacks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, models
from django.db.models.signals import post_save, pre_save


def insert_once(
    obj: models.Model, conflict_fields: Sequence[str], *, signals: bool = False
) -> bool:
    """INSERT `obj` unless a row with the same `conflict_fields` exists: True and `obj.pk`
    set when inserted, False when the row was already there (nothing written).

    One `INSERT ... ON CONFLICT (...) DO NOTHING RETURNING` (PostgreSQL, SQLite 3.35+),
    instead of a savepoint, an INSERT that may fail and a release: for the hot paths that
    store something exactly once (courier events, outbox messages with a dedupe key).
    `conflict_fields` must be covered by a unique constraint. With `signals`, pre_save and
    post_save (created) are sent as `save()` sends them, e.g. for the history row.
    """
    meta = obj._meta
    if signals:
        pre_save.send(sender=obj.__class__, instance=obj, raw=False, using=connection.alias,
                      update_fields=None)  # fmt: skip
    fields = [f for f in meta.concrete_fields if not f.primary_key or obj.pk is not None]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    target = ", ".join(quote(meta.get_field(name).column) for name in conflict_fields)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608  (names from the model)
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({target}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    if signals:
        post_save.send(sender=obj.__class__, instance=obj, created=True, raw=False,
                       using=connection.alias, update_fields=None)  # fmt: skip
    return True


def update_by_pk(model: type[models.Model], field_name: str, values: Mapping[Any, Any]) -> int:
    """Set one column of many rows to a value per primary key, in one statement:
    `WITH v (pk, value) AS (VALUES ...) UPDATE ... SET col = v.value FROM v WHERE pk = v.pk`.
    What `bulk_update` does with a CASE per row, at a fraction of its Python cost; sends
    no signals. Returns the rows updated."""
    if not values:
        return 0
    meta = model._meta
    field = meta.get_field(field_name)
    quote = connection.ops.quote_name
    pk_type = meta.pk.db_type(connection)
    value_type = field.db_type(connection)
    rows = ", ".join([f"(CAST(%s AS {pk_type}), CAST(%s AS {value_type}))"] * len(values))
    table = quote(meta.db_table)
    sql = (
        f"WITH v (pk, value) AS (VALUES {rows}) "  # noqa: S608  (names from the model)
        f"UPDATE {table} SET {quote(field.column)} = v.value "
        f"FROM v WHERE {table}.{quote(meta.pk.column)} = v.pk"
    )
    params = []
    for pk, value in values.items():
        params += [pk, field.get_db_prep_save(value, connection)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
