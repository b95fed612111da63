"""Signed, expiring tokens for emailed links, and hashed secrets.

- `sign(purpose, value)` / `unsign(purpose, token)`: a link that carries a value (an order
  number, a withdrawal id), signed with SECRET_KEY and a per-purpose salt, valid for
  SIGNED_LINK_MAX_AGE seconds unless told otherwise.
- `new_secret()` / `hash_secret()` / `secret_matches()`: bearer secrets such as the
  order access token are shown once and stored only as a SHA-256 hash; comparison is
  constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core import signing


class InvalidLink(Exception):
    """The link is forged, belongs to another purpose, or has expired."""


def _signer(purpose: str) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"shop.link.{purpose}")


def sign(purpose: str, value: str) -> str:
    return _signer(purpose).sign(value)


def unsign(purpose: str, token: str, *, max_age: int | None = None) -> str:
    max_age = settings.SIGNED_LINK_MAX_AGE if max_age is None else max_age
    try:
        return _signer(purpose).unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvalidLink("expired") from exc
    except signing.BadSignature as exc:
        raise InvalidLink("bad signature") from exc


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
