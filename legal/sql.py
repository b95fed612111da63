"""Small query helpers for the bulk work of the ledger and the sweep."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, models
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL


def ids_in(model: type[models.Model], path: str, ids: Iterable[int]):
    """`path IN (ids)`; on PostgreSQL one array parameter instead of thousands of
    placeholders to build, send, parse and plan: `= ANY(%s)` for a local column,
    `IN (SELECT unnest(%s))` for a joined path (`claim__order_id`)."""
    ids = list(ids)
    if connection.vendor != "postgresql":
        return Q(**{f"{path}__in": ids})
    if "__" in path:
        unnest = RawSQL(f"SELECT unnest({ARRAY_SQL})", (id_list(ids),))  # noqa: S611  (constant SQL)
        return Q(**{f"{path}__in": unnest})
    quote = connection.ops.quote_name
    column = model._meta.get_field(path).column
    return RawSQL(  # noqa: S611  (quoted identifiers; the ids are one parameter)
        f"{quote(model._meta.db_table)}.{quote(column)} = ANY({ARRAY_SQL})",
        (id_list(ids),),
        output_field=BooleanField(),
    )


# The ids travel as one text parameter ("1,2,3") the server splits: building a typed
# array parameter client-side costs more than the query for thousands of ids.
ARRAY_SQL = "string_to_array(%s, ',')::bigint[]"


def id_list(ids: Iterable[int]) -> str:
    return ",".join(map(str, map(int, ids)))
