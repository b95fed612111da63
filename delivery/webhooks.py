"""The courier webhook's signature (DESIGN.md section 10), pure: no database.

`X-Omniva-Timestamp` is Unix seconds; `X-Omniva-Signature` is `sha256=` + the hex
HMAC-SHA256 of `timestamp + "." + raw body` under `OMNIVA_WEBHOOK_SECRET`. A timestamp
more than 300 s older or newer than now, or a wrong signature, is refused.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="
TOLERANCE_SECONDS = 300


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(
        secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256
    ).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_problem(
    *, secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """Why the call is refused, or None when it is authentic and fresh."""
    if not secret:
        return "The webhook is not configured (OMNIVA_WEBHOOK_SECRET is empty)."
    timestamp = (timestamp or "").strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return "X-Omniva-Timestamp must be Unix seconds."
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    given = (signature or "").strip().encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode("ascii"), given):
        return "The X-Omniva-Signature does not match."
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return f"The timestamp is more than {TOLERANCE_SECONDS} seconds away from now."
    return None
