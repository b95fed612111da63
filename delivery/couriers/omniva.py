"""The Omniva OMX REST client (Omniva Message Exchange, JSON over HTTPS, HTTP Basic auth).

- `POST shipments/business-to-client`: register a parcel; the answer lists
  `savedShipments` (`clientItemId`, `barcode`) and `failedShipments` (`clientItemId`,
  `messageCode`, `message`).
- `POST shipments/package-labels`: the label as base64 PDF in `successAddressCards`
  (`barcode`, `fileData`), or `failedAddressCards`.
- `GET shipments/{barcode}`: the tracking events (`events`: `eventId`, `eventCode`,
  `eventDate`, `location`, `reason`).

Every request carries `customerCode` where Omniva wants it. Settings are read from
`django.conf.settings` when the client is made (`delivery.couriers.get_courier()` makes
one per use). Network errors and 5xx answers are retried with exponential backoff;
`failedShipments`, 400 `errors`, 401 and 403 become `CourierError`s worded for staff.
Nothing personal is logged: only methods, paths (barcodes) and status codes.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from delivery.couriers.base import (
    CourierAdapter,
    CourierError,
    Registration,
    ShipmentRequest,
    TrackingEvent,
)

logger = logging.getLogger(__name__)

RIGA = ZoneInfo("Europe/Riga")
MAIN_SERVICE = "PARCEL"
CHANNEL_PARCEL_MACHINE = "PARCEL_MACHINE"
CHANNEL_COURIER = "COURIER"
POSTAL_CODE = re.compile(r"^(?:LV-?)?(\d{4})$", re.IGNORECASE)

# Omniva's event codes -> the webhook's event names (DESIGN.md section 10). Codes not
# listed here are skipped by the poller (and logged), never guessed.
EVENT_CODES = {
    "REGISTERED": "registered",
    "ACCEPTED": "accepted",
    "IN_TRANSIT": "in_transit",
    "READY_FOR_PICKUP": "ready_for_pickup",
    "DELIVERED": "delivered",
    "DELIVERY_FAILED": "delivery_failed",
    "RETURNED_TO_SENDER": "returned_to_sender",
    "RETURN_ACCEPTED": "return_accepted",
    "RETURN_DELIVERED": "return_delivered",
}


def backoff_sleep(seconds: float) -> None:
    """The pause between attempts (tests replace it: they never sleep)."""
    time.sleep(seconds)


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def describe_error_body(body: Any) -> str:
    """Omniva's error shapes as one line: `title: details - field: message, ...`."""
    if not isinstance(body, dict):
        return ""
    parts = []
    errors = body.get("errors")
    if isinstance(errors, dict):
        for name, items in errors.items():
            if isinstance(items, list):
                messages = [str(i.get("message", "")) for i in items if isinstance(i, dict)]
            else:
                messages = [str(items)]
            parts.append(f"{name}: {', '.join(m for m in messages if m) or 'invalid'}")
    for failed in body.get("failedShipments") or []:
        if isinstance(failed, dict):
            parts.append(f"{failed.get('clientItemId') or '?'}: {failed.get('message') or ''}")
    head = " ".join(str(body.get(k) or "") for k in ("title", "details")).strip()
    return " - ".join(p for p in [head, "; ".join(parts)] if p)


def parse_occurred_at(value: Any) -> datetime | None:
    """ISO 8601; a time without a zone is Riga time (Omniva's local time)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=RIGA)


def split_address(address: str) -> dict[str, str]:
    """`street, city, LV-NNNN` (the seller address setting) into Omniva's address fields."""
    parts = [p.strip() for p in (address or "").split(",") if p.strip()]
    postcode = ""
    if parts and POSTAL_CODE.match(parts[-1].replace(" ", "")):
        postcode = POSTAL_CODE.match(parts.pop().replace(" ", "")).group(1)
    city = parts.pop() if len(parts) > 1 else ""
    return {"street": ", ".join(parts), "deliverypoint": city, "postcode": postcode}


class OmnivaClient(CourierAdapter):
    name = "omniva"
    can_register = True
    can_track = True

    MAX_ATTEMPTS = 3
    BACKOFF_SECONDS = 0.5  # doubled after every failed attempt

    def __init__(
        self,
        *,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        customer_code: str | None = None,
        timeout: float | None = None,
        attempts: int | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        url = settings.OMNIVA_API_URL if base_url is None else base_url
        if not url:
            raise CourierError(self.off_message())
        self.base_url = url.rstrip("/") + "/"
        self.username = settings.OMNIVA_USERNAME if username is None else username
        self.password = settings.OMNIVA_PASSWORD if password is None else password
        self.customer_code = (
            settings.OMNIVA_CUSTOMER_CODE if customer_code is None else customer_code
        ) or self.username
        self.timeout = float(settings.OMNIVA_TIMEOUT if timeout is None else timeout)
        self.attempts = max(1, attempts or self.MAX_ATTEMPTS)
        self.sleep = sleep or backoff_sleep

    # --- HTTP ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return {
            "Authorization": f"Basic {token}",
            "Accept": "application/json",
            "Content-Type": "application/json; charset=utf-8",
        }

    def _send(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = urllib.parse.urljoin(self.base_url, path)
        if not url.startswith(("http://", "https://")):
            raise CourierError(f"OMNIVA_API_URL is not an http(s) URL: {self.base_url}")
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers())  # noqa: S310
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            return response.status, _json(response.read())

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One call with retries on network errors and 5xx; 4xx come back as they are."""
        last: CourierError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                status, payload = self._send(method, path, body)
            except urllib.error.HTTPError as exc:
                status, payload = exc.code, _json(exc.read() or b"")
            except (OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", None) or exc
                kind = "timed out" if "timed out" in str(reason).lower() else "unreachable"
                last = CourierError(
                    f"Omniva {kind} ({type(reason).__name__}) on {method} {path}",
                    retryable=True,
                )
                logger.warning("Omniva %s %s %s, attempt %s", method, path, kind, attempt)
                status, payload = None, None
            if status is not None and status < 500:
                return status, payload
            if status is not None:
                last = CourierError(
                    f"Omniva answered HTTP {status} on {method} {path}: "
                    f"{describe_error_body(payload) or 'server error'}",
                    retryable=True,
                    status=status,
                )
                logger.warning(
                    "Omniva %s %s answered %s, attempt %s", method, path, status, attempt
                )
            if attempt < self.attempts:
                self.sleep(self.BACKOFF_SECONDS * 2 ** (attempt - 1))
        assert last is not None
        last.message = f"{last.message} (gave up after {self.attempts} attempts)"
        last.args = (last.message,)
        raise last

    def _refusal(self, status: int, payload: Any, what: str) -> CourierError:
        detail = describe_error_body(payload)
        if status == 401:
            message = (
                "Omniva refused our credentials (HTTP 401): check OMNIVA_USERNAME and "
                "OMNIVA_PASSWORD."
            )
        elif status == 403:
            message = f"Omniva refused access to {what} (HTTP 403): check OMNIVA_CUSTOMER_CODE."
        elif status == 404:
            message = f"Omniva does not know {what} (HTTP 404)."
        else:
            message = f"Omniva refused {what} (HTTP {status})."
        if detail:
            message = f"{message} {detail}"
        return CourierError(message[:500], status=status)

    # --- The adapter -----------------------------------------------------------------------

    def _sender(self) -> dict[str, Any]:
        shop = settings.SHOP
        return {
            "personName": shop["SELLER_NAME"],
            "contactEmail": shop["SELLER_EMAIL"],
            "address": {"country": "LV", **split_address(shop["SELLER_ADDRESS"])},
        }

    def shipment_body(self, request: ShipmentRequest) -> dict[str, Any]:
        """R27: the receiver is only name, phone, email and parcel machine or address."""
        receiver = request.receiver
        if receiver.to_parcel_machine:
            channel = CHANNEL_PARCEL_MACHINE
            address = {"country": receiver.country, "offloadPostcode": receiver.parcel_machine_zip}
        else:
            channel = CHANNEL_COURIER
            match = POSTAL_CODE.match(receiver.postal_code.replace(" ", ""))
            address = {
                "country": receiver.country,
                "postcode": match.group(1) if match else receiver.postal_code,
                "deliverypoint": receiver.city,
                "street": receiver.street,
            }
        return {
            "customerCode": self.customer_code,
            "shipments": [
                {
                    "mainService": MAIN_SERVICE,
                    "deliveryChannel": channel,
                    "partnerShipmentId": request.reference,
                    "returnAllowed": request.return_allowed,
                    "paidByReceiver": False,
                    "shipmentComment": request.comment,
                    "measurement": {"weight": request.weight_kg},
                    "receiverAddressee": {
                        "personName": receiver.name,
                        "contactMobile": receiver.phone,
                        "contactEmail": receiver.email,
                        "address": address,
                    },
                    "senderAddressee": self._sender(),
                }
            ],
        }

    def register_shipment(self, request: ShipmentRequest) -> Registration:
        status, payload = self.request(
            "POST", "shipments/business-to-client", self.shipment_body(request)
        )
        if status >= 400:
            raise self._refusal(status, payload, f"the shipment {request.reference}")
        payload = payload if isinstance(payload, dict) else {}
        failed = payload.get("failedShipments") or []
        if failed:
            raise CourierError(
                f"Omniva refused the shipment {request.reference}: "
                f"{describe_error_body({'failedShipments': failed})}"[:500],
                status=status,
            )
        saved = [s for s in payload.get("savedShipments") or [] if isinstance(s, dict)]
        mine = [s for s in saved if s.get("clientItemId") == request.reference] or saved
        barcode = str((mine[0].get("barcode") if mine else "") or "").strip()
        if not barcode:
            raise CourierError(
                f"Omniva answered without a barcode for the shipment {request.reference}.",
                status=status,
            )
        return Registration(barcode=barcode, return_code=str(mine[0].get("returnCode") or ""))

    def fetch_label(self, barcode: str) -> bytes:
        status, payload = self.request(
            "POST",
            "shipments/package-labels",
            {
                "customerCode": self.customer_code,
                "barcodes": [{"barcode": barcode}],
                "sendAddressCardTo": "RESPONSE",
            },
        )
        if status >= 400:
            raise self._refusal(status, payload, f"the label of {barcode}")
        payload = payload if isinstance(payload, dict) else {}
        for card in payload.get("successAddressCards") or []:
            if isinstance(card, dict) and card.get("barcode") == barcode and card.get("fileData"):
                try:
                    pdf = base64.b64decode(card["fileData"], validate=True)
                except ValueError as exc:
                    raise CourierError(f"Omniva sent an unreadable label for {barcode}.") from exc
                if not pdf.startswith(b"%PDF"):
                    raise CourierError(f"Omniva sent a label for {barcode} that is not a PDF.")
                return pdf
        codes = [
            str(c.get("messageCode") or c.get("message") or "")
            for c in payload.get("failedAddressCards") or []
            if isinstance(c, dict)
        ]
        raise CourierError(
            f"Omniva has no label for {barcode}" + (f": {', '.join(codes)}" if codes else ".")
        )

    def track(self, barcode: str) -> list[TrackingEvent]:
        status, payload = self.request("GET", f"shipments/{urllib.parse.quote(barcode, safe='')}")
        if status >= 400:
            raise self._refusal(status, payload, f"the shipment {barcode}")
        events = payload.get("events") if isinstance(payload, dict) else None
        found = []
        for raw in events or []:
            if not isinstance(raw, dict):
                continue
            code = str(raw.get("eventCode") or "").strip().upper()
            name = EVENT_CODES.get(code)
            occurred_at = parse_occurred_at(raw.get("eventDate"))
            if name is None or occurred_at is None:
                logger.info("Omniva tracking of %s: skipped event code %r", barcode, code)
                continue
            event_id = str(raw.get("eventId") or "").strip() or (
                "poll-"
                + hashlib.sha256(f"{barcode}|{code}|{raw.get('eventDate')}".encode()).hexdigest()[
                    :32
                ]
            )
            found.append(
                TrackingEvent(
                    event_id=event_id[:128],
                    event=name,
                    occurred_at=occurred_at,
                    location=str(raw.get("location") or "")[:200],
                    reason=str(raw.get("reason") or "")[:200],
                    raw=raw,
                )
            )
        return found
