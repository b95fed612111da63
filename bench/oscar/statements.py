"""Group captured SQL statements by kind and table, the same way on both sides of the
comparison (plain standard library: imported by the oscar worker and by the runner)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([A-Za-z0-9_]+)"?', re.IGNORECASE)


def kind(sql: str) -> str:
    """`SELECT orders_order`, `INSERT orders_orderline`, `SAVEPOINT`, ..."""
    words = sql.lstrip().split(None, 1)
    verb = words[0].upper() if words else "?"
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return verb
    match = _TABLE.search(sql)
    return f"{verb} {match.group(1)}" if match else verb


def summarize(statements: Iterable[str]) -> dict[str, int]:
    counts = Counter(kind(sql) for sql in statements)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
