"""Use cases of the delivery app, one module per area:

- `directory`: the parcel-machine directory (R4) and delivery tariffs (R6)
- `shipments`: register_shipment (by hand or through the Omniva client, R14a, R27),
  labels, return shipments, replacements (R24), stopping unregistered ones (R16)
- `courier_events`: apply_courier_event for the webhook and the poller (R14b, R14c), the
  `on_return_delivered` hook (R20)
- `tracking`: the tracking poller (R14b)
"""

from delivery.services.courier_events import (
    EVENT_HANDLERS,
    ApplyResult,
    CourierEventData,
    ReturnArrival,
    apply_courier_event,
    dismiss_events,
    goods_delivered_at,
    mark_events_reviewed,
    on_return_delivered,
    on_returned_to_sender,
    parcel_on_its_way,
    record_return_arrival,
    rematch_events,
)
from delivery.services.directory import (
    DEMO_LOCATIONS_FILE,
    LoadResult,
    ParcelMachineImportError,
    check_new_tariff_date,
    create_delivery_tariff,
    load_demo_parcel_machines,
    load_parcel_machines,
    parse_locations,
    set_parcel_machines_active,
)
from delivery.services.shipments import (
    REGISTER_TOPIC,
    create_replacement_shipment,
    fetch_label,
    normalise_barcode,
    receiver_for,
    register_pending_shipment,
    register_return_shipment,
    register_shipment,
    register_with_courier,
    retry_registration,
    stop_shipments_of_cancelled_order,
    stop_unregistered_shipments,
)
from delivery.services.tracking import PollReport, poll_tracking

__all__ = [
    "DEMO_LOCATIONS_FILE",
    "EVENT_HANDLERS",
    "REGISTER_TOPIC",
    "ApplyResult",
    "CourierEventData",
    "LoadResult",
    "ParcelMachineImportError",
    "PollReport",
    "ReturnArrival",
    "apply_courier_event",
    "check_new_tariff_date",
    "create_delivery_tariff",
    "create_replacement_shipment",
    "dismiss_events",
    "fetch_label",
    "goods_delivered_at",
    "load_demo_parcel_machines",
    "load_parcel_machines",
    "mark_events_reviewed",
    "normalise_barcode",
    "on_return_delivered",
    "on_returned_to_sender",
    "parcel_on_its_way",
    "parse_locations",
    "poll_tracking",
    "receiver_for",
    "record_return_arrival",
    "register_pending_shipment",
    "register_return_shipment",
    "register_shipment",
    "register_with_courier",
    "rematch_events",
    "retry_registration",
    "set_parcel_machines_active",
    "stop_shipments_of_cancelled_order",
    "stop_unregistered_shipments",
]
