"""`Idempotency-Key` for POST /api/orders/ (DESIGN.md section 10).

Same key and same body from the same client: the stored response, no second order. Same
key, other body: 409. The record is written in the same transaction as the order, so a
crash between the two is impossible; two concurrent requests with one key race on the
unique key and the loser answers with the winner's response. Records are kept for 24
hours (they hold the access token shown once), then purged by run_deadlines.

A key is scoped to the client that sent it: the record is filed under the SHA-256 of
(client, key), where the client is the signed-in user or, for an anonymous checkout, the
client address the rate limits use (DRF's `get_ident`, which honours NUM_PROXIES). The same
key from another client is another key: it never answers with the first client's reply,
which holds the order's access token.

The database never holds the order's raw access token (it is stored hashed on the order):
the access token in the stored response is sealed with AES-256-GCM (`cryptography`), under
a key derived by HKDF-SHA256 from SECRET_KEY, the client and the raw Idempotency-Key, which
only the client holds; the record's own key is the associated data. A replay with the
right key and client opens it; the table alone reveals nothing, and a sealed value that was
altered (or sealed under another SECRET_KEY) is refused, never opened to garbage.
Records sealed before AES-GCM (prefix "sealed:") were filed under the SHA-256 of the key
alone: no lookup finds them any more, so they count as absent and the purge removes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import IdempotencyRecord
from shop.errors import Conflict

KEEP_FOR = timedelta(hours=24)

SEALED_FIELD = "access_token"
SEALED_PREFIX = "aesgcm:"
NONCE_BYTES = 12  # the 96-bit nonce AES-GCM is specified for; random per seal


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    body: dict[str, Any]
    replayed: bool


def request_fingerprint(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _scoped(key: str, client: str) -> bytes:
    # JSON keeps the two parts apart whatever characters they hold.
    return json.dumps([client, key], separators=(",", ":")).encode()


def stored_key(key: str, *, client: str) -> str:
    """What the table holds instead of the client's key: SHA-256 of (client, key)."""
    return hashlib.sha256(_scoped(key, client)).hexdigest()


def _cipher(key: str, client: str) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"orders.idempotency.seal:" + _scoped(key, client),
    ).derive(settings.SECRET_KEY.encode())
    return AESGCM(derived)


def seal_body(body: dict[str, Any], key: str, *, client: str) -> dict[str, Any]:
    secret = body.get(SEALED_FIELD)
    if not isinstance(secret, str):
        return body
    nonce = os.urandom(NONCE_BYTES)
    aad = stored_key(key, client=client).encode()
    sealed = nonce + _cipher(key, client).encrypt(nonce, secret.encode(), aad)
    return {**body, SEALED_FIELD: SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode()}


class SealBroken(Exception):
    """The sealed value does not open: altered, truncated or sealed under another key."""


def unseal_body(body: dict[str, Any], key: str, *, client: str) -> dict[str, Any]:
    sealed = body.get(SEALED_FIELD)
    if not (isinstance(sealed, str) and sealed.startswith(SEALED_PREFIX)):
        return body
    try:
        raw = base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX).encode())
        nonce, ciphertext = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        aad = stored_key(key, client=client).encode()
        secret = _cipher(key, client).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError) as exc:  # ValueError: bad base64 or a short nonce
        raise SealBroken from exc
    return {**body, SEALED_FIELD: secret.decode()}


def _replay(key: str, client: str, fingerprint: str) -> IdempotentResult | None:
    record = IdempotencyRecord.objects.filter(key=stored_key(key, client=client)).first()
    if record is None:
        return None
    if not hmac.compare_digest(record.request_hash, fingerprint):
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
        )
    try:
        body = unseal_body(record.response_body, key, client=client)
    except SealBroken:
        raise Conflict(
            "idempotency_record_unreadable",
            "The stored answer for this Idempotency-Key cannot be read; the order was "
            "placed: find it through the link in its email.",
        ) from None
    return IdempotentResult(record.response_status, body, replayed=True)


def run_idempotent(
    *,
    key: str,
    data: Any,
    action: Callable[[], tuple[int, dict[str, Any], Any]],
    client: str = "",
) -> IdempotentResult:
    """Run `action` (returning status, body, order) once per client, key and body.

    `client` names who sent the key. Empty only where the caller scopes the key itself:
    the withdrawal API files it under the order's number, which only the order's holder
    can reach, and its answer holds no access token.
    """
    fingerprint = request_fingerprint(data)
    replay = _replay(key, client, fingerprint)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            status, body, order = action()
            IdempotencyRecord.objects.create(
                key=stored_key(key, client=client),
                request_hash=fingerprint,
                response_status=status,
                response_body=seal_body(body, key, client=client),
                order=order,
            )
    except IntegrityError:
        replay = _replay(key, client, fingerprint)
        if replay is None:
            raise
        return replay
    return IdempotentResult(status, body, replayed=False)


def purge_expired(*, now=None) -> int:
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - KEEP_FOR).delete()
    return deleted
