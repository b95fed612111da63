"""`Idempotency-Key` for POST /api/orders/ (DESIGN.md section 10).

Same key and same body: the stored response, no second order. Same key, other body: 409.
The record is written in the same transaction as the order, so a crash between the two
is impossible; two concurrent requests with one key race on the unique key and the loser
answers with the winner's response. Records are kept for 24 hours (they hold the access
token shown once), then purged by run_deadlines.

The database never holds the order's raw access token (it is stored hashed on the order):
the record is filed under the SHA-256 of the key, and the access token in the stored
response is sealed with a keystream derived from SECRET_KEY and the raw key, which only
the client holds. A replay with the right key unseals it; the table alone reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
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


SEALED_FIELD = "access_token"
SEALED_PREFIX = "sealed:"


def stored_key(key: str) -> str:
    """What the table holds instead of the client's key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _keystream(key: str, length: int) -> bytes:
    """HMAC-SHA256 in counter mode, keyed with SECRET_KEY, over the raw client key."""
    stream = b""
    counter = 0
    while len(stream) < length:
        stream += hmac.new(
            settings.SECRET_KEY.encode(),
            f"idempotency-record:{counter}:{key}".encode(),
            hashlib.sha256,
        ).digest()
        counter += 1
    return stream[:length]


def _xor(data: bytes, key: str) -> bytes:
    return bytes(a ^ b for a, b in zip(data, _keystream(key, len(data)), strict=True))


def seal_body(body: dict[str, Any], key: str) -> dict[str, Any]:
    secret = body.get(SEALED_FIELD)
    if not isinstance(secret, str):
        return body
    sealed = base64.urlsafe_b64encode(_xor(secret.encode(), key)).decode()
    return {**body, SEALED_FIELD: SEALED_PREFIX + sealed}


def unseal_body(body: dict[str, Any], key: str) -> dict[str, Any]:
    sealed = body.get(SEALED_FIELD)
    if not (isinstance(sealed, str) and sealed.startswith(SEALED_PREFIX)):
        return body
    raw = base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX).encode())
    return {**body, SEALED_FIELD: _xor(raw, key).decode()}


def _replay(key: str, fingerprint: str) -> IdempotentResult | None:
    record = IdempotencyRecord.objects.filter(key=stored_key(key)).first()
    if record is None:
        return None
    if not hmac.compare_digest(record.request_hash, fingerprint):
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
        )
    return IdempotentResult(
        record.response_status, unseal_body(record.response_body, key), replayed=True
    )


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
                key=stored_key(key),
                request_hash=fingerprint,
                response_status=status,
                response_body=seal_body(body, key),
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
