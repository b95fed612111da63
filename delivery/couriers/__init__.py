"""Courier adapters, chosen by `settings.COURIER_ADAPTER` (read when used).

- `"off"`: staff register parcels in Omniva's e-service and record the barcode by hand;
- a dotted path to a `CourierAdapter` subclass, e.g. `delivery.couriers.omniva.OmnivaClient`;
- empty (the default): the Omniva client when `OMNIVA_API_URL` is set, otherwise off.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from delivery.couriers.base import (
    CourierAdapter,
    CourierError,
    ManualCourier,
    Receiver,
    Registration,
    ShipmentRequest,
    TrackingEvent,
)

OMNIVA_ADAPTER = "delivery.couriers.omniva.OmnivaClient"
OFF = "off"

__all__ = [
    "CourierAdapter",
    "CourierError",
    "ManualCourier",
    "Receiver",
    "Registration",
    "ShipmentRequest",
    "TrackingEvent",
    "adapter_path",
    "get_courier",
]


def adapter_path() -> str:
    configured = (getattr(settings, "COURIER_ADAPTER", "") or "").strip()
    if configured:
        return configured
    return OMNIVA_ADAPTER if getattr(settings, "OMNIVA_API_URL", "") else OFF


def get_courier() -> CourierAdapter:
    path = adapter_path()
    if path.lower() == OFF:
        return ManualCourier()
    return import_string(path)()
