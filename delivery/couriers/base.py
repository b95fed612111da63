"""The courier adapter interface (STYLE.md: a setting picks an adapter).

Services speak to a courier only through `CourierAdapter`; `delivery.couriers.get_courier()`
returns the one `settings.COURIER_ADAPTER` names. Adapters take and return plain values, never
model instances, and raise `CourierError` with a message staff can act on.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

# Where customers follow a parcel (setting OMNIVA_TRACKING_URL overrides it).
DEFAULT_TRACKING_URL = "https://www.omniva.lv/privats/sutijuma-atrasanas-vieta?barcode={barcode}"


@dataclass(frozen=True)
class Receiver:
    """R27: all Omniva receives about the customer: name, phone, email, and the parcel
    machine or the courier address."""

    name: str
    phone: str
    email: str
    parcel_machine_zip: str = ""
    street: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = "LV"

    @property
    def to_parcel_machine(self) -> bool:
        return bool(self.parcel_machine_zip)


@dataclass(frozen=True)
class ShipmentRequest:
    reference: str  # our id for the parcel (Omniva `partnerShipmentId`): the same on a retry
    receiver: Receiver
    return_allowed: bool = True  # T7.5: the customer gets a return code
    weight_kg: str = "1.0"
    comment: str = ""


@dataclass(frozen=True)
class Registration:
    barcode: str
    return_code: str = ""


@dataclass(frozen=True)
class TrackingEvent:
    """One tracking answer in the webhook's vocabulary (DESIGN.md section 10)."""

    event_id: str
    event: str
    occurred_at: datetime
    location: str = ""
    reason: str = ""
    raw: dict = field(default_factory=dict)


class CourierError(Exception):
    """The courier refused or could not be reached.

    `message` is written for staff (no personal data); `retryable` is True for network
    errors and 5xx answers, which a later attempt may get past.
    """

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class CourierAdapter:
    """What a courier can do for us. `can_register`/`can_track` are False for adapters
    that only record what staff type in."""

    name = "courier"
    can_register = False
    can_track = False

    def register_shipment(self, request: ShipmentRequest) -> Registration:
        raise CourierError(self.off_message())

    def fetch_label(self, barcode: str) -> bytes:
        raise CourierError(self.off_message())

    def track(self, barcode: str) -> list[TrackingEvent]:
        return []

    def tracking_url(self, barcode: str) -> str:
        """The customer's tracking link (the shop ships with Omniva, by hand or by API)."""
        template = getattr(settings, "OMNIVA_TRACKING_URL", "") or DEFAULT_TRACKING_URL
        return template.format(barcode=urllib.parse.quote(barcode, safe=""))

    @staticmethod
    def off_message() -> str:
        return (
            "The courier client is off (set OMNIVA_API_URL, or COURIER_ADAPTER): "
            "register the parcel in Omniva's own e-service and record its barcode by hand."
        )


class ManualCourier(CourierAdapter):
    """COURIER_ADAPTER "off": staff register parcels themselves and record the barcode."""

    name = "off"
