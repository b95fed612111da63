"""Reference data read on every order, cached in each process for a few seconds.

The terms and privacy-policy versions, delivery tariffs, VAT rates, extra holidays and the
parcel-machine directory are small tables that change a few times a year, yet the
checkout read all six on every order. Each is read whole (without large text columns)
and kept in this process for `TTL` seconds; what is in force at a moment is still decided
from the rows on every call, so an effective date is honoured to the microsecond. Saving
or deleting a row through the ORM empties this process's cache at once; other processes
see the change within `TTL` seconds (a bulk update must call `changed()` itself).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

T = TypeVar("T")

TTL = 5.0  # seconds

_entries: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def cached(key: str, load: Callable[[], T]) -> T:
    """`load()`'s value, read again when older than TTL seconds (or after `forget()`)."""
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and now - entry[0] < TTL:
        return entry[1]
    value = load()
    with _lock:
        _entries[key] = (now, value)
    return value


def in_force(rows: list[T], at: datetime | None = None) -> T | None:
    """The row in force at `at` (default now): the first already effective of `rows`,
    which are ordered latest `effective_from` first."""
    at = at or timezone.now()
    return next((row for row in rows if row.effective_from <= at), None)


def forget(*_args: Any, **_kwargs: Any) -> None:
    """Drop everything cached in this process (also a signal receiver)."""
    with _lock:
        _entries.clear()


def changed(*_args: Any, **_kwargs: Any) -> None:
    """Reference rows were written: forget now, and again when the transaction commits
    (another thread of this process may have read the old rows in between)."""
    forget()
    transaction.on_commit(forget)


def watch(*model_classes: type[models.Model]) -> None:
    """Forget the cache whenever a row of these models is saved or deleted through the
    ORM; bulk writes call `changed()` themselves."""
    for model in model_classes:
        post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"reference-{model}")
        post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"reference-d-{model}")
