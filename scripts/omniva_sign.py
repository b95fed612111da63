#!/usr/bin/env python3
"""Print a signed `curl` call of the courier webhook (DESIGN.md section 10).

    .venv/bin/python scripts/omniva_sign.py --barcode CE123456789LV --event delivered
    .venv/bin/python scripts/omniva_sign.py --barcode CE123456789LV --event delivered | sh

The signature is `sha256=` + hex HMAC-SHA256 of `timestamp + "." + body` with the
webhook secret (`--secret`, else $OMNIVA_WEBHOOK_SECRET, else the development default of
`make run`). The timestamp is now: run the printed command within 300 seconds.
Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shlex
import time
import uuid
from datetime import UTC, datetime

# shop/settings.py's development default (DJANGO_DEBUG=true only); not a secret.
DEV_SECRET = "dev-omniva-webhook-secret"  # noqa: S105
EVENTS = (
    "registered",
    "accepted",
    "in_transit",
    "ready_for_pickup",
    "delivered",
    "delivery_failed",
    "returned_to_sender",
    "return_accepted",
    "return_delivered",
)


def signed_call(
    *,
    secret: str,
    barcode: str,
    event: str,
    occurred_at: str,
    event_id: str,
    location: str = "",
    reason: str = "",
    timestamp: int | None = None,
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {
            "event_id": event_id,
            "barcode": barcode,
            "event": event,
            "occurred_at": occurred_at,
            "location": location,
            "reason": reason,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Omniva-Timestamp": stamp,
        "X-Omniva-Signature": f"sha256={digest}",
    }
    return headers, body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--barcode", required=True, help="e.g. CE123456789LV")
    parser.add_argument("--event", default="delivered", choices=EVENTS)
    parser.add_argument(
        "--occurred-at", help="ISO 8601, e.g. 2026-11-03T22:30:00Z (default: now, UTC)"
    )
    parser.add_argument("--event-id", help="default: a new random id (the same id: duplicate)")
    parser.add_argument("--location", default="")
    parser.add_argument("--reason", default="", help="e.g. not_collected, wrong_address")
    parser.add_argument("--url", default="http://127.0.0.1:8000/api/webhooks/omniva/")
    parser.add_argument("--secret", help="default: $OMNIVA_WEBHOOK_SECRET or the dev secret")
    args = parser.parse_args(argv)

    occurred_at = args.occurred_at or datetime.now(UTC).replace(microsecond=0).isoformat()
    headers, body = signed_call(
        secret=args.secret or os.environ.get("OMNIVA_WEBHOOK_SECRET") or DEV_SECRET,
        barcode=args.barcode.strip().upper(),
        event=args.event,
        occurred_at=occurred_at,
        event_id=args.event_id or f"evt-{uuid.uuid4().hex[:16]}",
        location=args.location,
        reason=args.reason,
    )
    parts = ["curl", "-sS", "-X", "POST", args.url]
    for name, value in headers.items():
        parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", body.decode("utf-8")]
    print(" ".join(shlex.quote(p) for p in parts))


if __name__ == "__main__":
    main()
