"""Signed, expiring tokens for emailed links, and hashed secrets.

- `sign(purpose, value)` / `unsign(purpose, token)`: a link that carries a value (an order
  number, a withdrawal id), signed with SECRET_KEY and a per-purpose salt, valid for
  SIGNED_LINK_MAX_AGE seconds unless told otherwise.
- `sign_link(purpose, value, expires_at=...)` / `unsign_link(purpose, token)`: a link
  whose lifetime is fixed when it is issued (each purpose picks its own: an order page
  for weeks, a withdrawal button for the whole withdrawal period).
- `new_secret()` / `hash_secret()` / `secret_matches()`: bearer secrets such as the
  order access token are shown once and stored only as a SHA-256 hash; comparison is
  constant-time. `burn_secret_check()` costs the same as a comparison that fails, so an
  unknown id answers as fast as a wrong secret (no timing oracle).
- `strike_links()` / `redact_query_tokens()`: what is kept or logged never carries a
  usable secret: links with a token are struck out of kept email texts, `token=` values
  are cut out of log lines.
- `seal()` / `unseal()`: a text kept only until it is used (an email waiting in the
  outbox), encrypted with Fernet (AES-CBC + HMAC, `cryptography`) under a key derived
  from SECRET_KEY (SECRET_KEY_FALLBACKS still open it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import signing
from django.utils import timezone


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


def sign_link(purpose: str, value: dict, *, expires_at: datetime) -> str:
    """A link token carrying `value` (JSON) that stops working at `expires_at`."""
    payload = {"v": value, "e": int(expires_at.timestamp())}
    return signing.dumps(payload, salt=f"shop.link-v2.{purpose}", compress=True)


def unsign_link(purpose: str, token: str) -> tuple[dict, int]:
    """(value, expiry as a Unix time) of a valid, unexpired link of `purpose`;
    InvalidLink otherwise."""
    if not token or len(token) > 1024:
        raise InvalidLink("bad signature")
    try:
        payload = signing.loads(token, salt=f"shop.link-v2.{purpose}")
    except signing.BadSignature as exc:
        raise InvalidLink("bad signature") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("v"), dict):
        raise InvalidLink("bad signature")
    expires = payload.get("e")
    if not isinstance(expires, int) or timezone.now().timestamp() > expires:
        raise InvalidLink("expired")
    return payload["v"], expires


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


# A hash nothing matches: checked when there is no stored hash, so that both answers
# take the same work.
_DUMMY_HASH = hashlib.sha256(b"no such secret").hexdigest()


def burn_secret_check(secret: str | None) -> bool:
    """The work of checking `secret` (when there is one, as `secret_matches` does)
    against a hash nothing matches; always False."""
    if secret:
        hmac.compare_digest(hash_secret(secret), _DUMMY_HASH)
    return False


# --- Keeping secrets out of what is stored and logged -----------------------------------

LINK_REMOVED = "[link removed]"
TOKEN_PARAMETERS = ("token", "access_token")
_TOKEN_PARAM = "|".join(TOKEN_PARAMETERS)
# A URL whose query or fragment carries a token: struck out whole from kept texts.
_LINK_WITH_TOKEN = re.compile(
    rf"(?:https?://|/)[^\s<>\"']*?[?&#;](?:{_TOKEN_PARAM})=[^\s<>\"']*", re.IGNORECASE
)
# token=VALUE anywhere in a log line (query strings, form bodies): the value is cut out.
_TOKEN_VALUE = re.compile(rf"(?<![\w-])((?:{_TOKEN_PARAM})=)[^\s&#;\"'<>]+", re.IGNORECASE)
_TOKEN_HEADER = re.compile(
    r"((?:X-Order-Token|X-Subject-Token|Authorization)[\"']?\s*[:=]\s*[\"']?(?:Bearer |Token )?)"
    r"[^\s\"',}]+",
    re.IGNORECASE,
)


def strike_links(text: str) -> str:
    """The text with every link that carries a token replaced by "[link removed]"."""
    return _LINK_WITH_TOKEN.sub(LINK_REMOVED, text or "")


def redact_query_tokens(text: str) -> str:
    """`token=...` values and token headers cut out of a log line (the path stays)."""
    text = _TOKEN_VALUE.sub(r"\1[removed]", text)
    return _TOKEN_HEADER.sub(r"\1[removed]", text)


def _fernet() -> MultiFernet:
    """Sealing under SECRET_KEY; opening under it or any of SECRET_KEY_FALLBACKS (a key
    rotation does not lose the emails waiting in the outbox)."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"shop.seal:{key}".encode()).digest()))
            for key in keys
        ]
    )


def seal(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def unseal(sealed: str) -> str:
    """The sealed text; InvalidLink when it was not sealed with this SECRET_KEY."""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise InvalidLink("bad seal") from exc
