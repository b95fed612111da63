"""Small database helpers the ORM lacks."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def insert_once(obj: models.Model, conflict_fields: Sequence[str]) -> bool:
    """INSERT `obj` unless a row with the same `conflict_fields` exists: True and `obj.pk`
    set when inserted, False when the row was already there (nothing written).

    One `INSERT ... ON CONFLICT (...) DO NOTHING RETURNING` (PostgreSQL, SQLite 3.35+),
    instead of a savepoint, an INSERT that may fail and a release: for the hot paths that
    store something exactly once (courier events, outbox messages with a dedupe key).
    `conflict_fields` must be covered by a unique constraint. Signals are not sent.
    """
    meta = obj._meta
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
    return True
