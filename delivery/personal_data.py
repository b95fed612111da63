"""Personal data of the delivery app, declared into the retention policy (legal.registry).

What Omniva gets is logged as a disclosure (R27); here: what the shop keeps.
"""

from __future__ import annotations

from legal.registry import ERASE_NULL, declare, exportable, not_personal

not_personal(
    "delivery.ParcelMachine",
    "name",
    "city",
    "address",
    reason="a public Omniva location from the directory, not a person's",
)
# The label PDF Omniva prints carries the receiver's name, phone and address.
declare("delivery", "delivery.Shipment", order_path="order_id", fields={"label_pdf": ERASE_NULL})
exportable(
    "delivery.Shipment",
    key="shipments",
    order_path="order_id",
    fields=["direction", "status", "barcode", "created_at", "registered_at", "delivered_at"],
)
