"""`Idempotency-Key` for POST /api/orders/ (DESIGN.md section 10).

Same key and same body: the stored response, no second order. Same key, other body: 409.
The record is written in the same transaction as the order, so a crash between the two
is impossible; two concurrent requests with one key race on the unique key and the loser
answers with the winner's response. Records are kept for 24 hours (they hold the access
token shown once), then purged by run_deadlines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import IdempotencyRecord
from shop.errors import Conflict

KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    body: dict[str, Any]
    replayed: bool


def request_fingerprint(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(key: str, fingerprint: str) -> IdempotentResult | None:
    record = IdempotencyRecord.objects.filter(key=key).first()
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
        )
    return IdempotentResult(record.response_status, record.response_body, replayed=True)


def run_idempotent(
    *, key: str, data: Any, action: Callable[[], tuple[int, dict[str, Any], Any]]
) -> IdempotentResult:
    """Run `action` (returning status, body, order) once per key and body."""
    fingerprint = request_fingerprint(data)
    replay = _replay(key, fingerprint)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            status, body, order = action()
            IdempotencyRecord.objects.create(
                key=key,
                request_hash=fingerprint,
                response_status=status,
                response_body=body,
                order=order,
            )
    except IntegrityError:
        replay = _replay(key, fingerprint)
        if replay is None:
            raise
        return replay
    return IdempotentResult(status, body, replayed=False)


def purge_expired(*, now=None) -> int:
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - KEEP_FOR).delete()
    return deleted
