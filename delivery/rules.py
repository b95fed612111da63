"""Delivery rules as arithmetic, pure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from shop.calendar import LatvianCalendar
from shop.money import ZERO, to_money


def delivery_fee(*, goods_total: Decimal, fee: Decimal, free_above: Decimal) -> Decimal:
    """R6 (T5.2): the fee when the goods total is at most the threshold; free above it.

    Exactly EUR 50.00 pays the fee; EUR 50.01 ships free.
    """
    return ZERO if to_money(goods_total) > to_money(free_above) else to_money(fee)


def estimated_delivery(*, paid_on: date, calendar: LatvianCalendar) -> tuple[date, date]:
    """R7 (T5.3): 1-2 working days after the day payment is confirmed."""
    return calendar.add_working_days(paid_on, 1), calendar.add_working_days(paid_on, 2)


# --- Courier events (R14b, R14c) ---------------------------------------------------------
# Shipment states by how far a parcel has come. Events never move a shipment backwards
# (R14b): a late `in_transit` after `delivered` is kept but changes nothing.
PENDING = "pending"
REGISTERED = "registered"
IN_TRANSIT = "in_transit"
READY_FOR_PICKUP = "ready_for_pickup"
DELIVERED = "delivered"
DELIVERY_FAILED = "delivery_failed"
RETURNED_TO_SENDER = "returned_to_sender"
CANCELLED = "cancelled"  # stopped before it was registered (e.g. a withdrawal, R16)

STATUS_RANK = {
    PENDING: 0,
    REGISTERED: 1,
    IN_TRANSIT: 2,
    READY_FOR_PICKUP: 3,
    DELIVERY_FAILED: 4,
    DELIVERED: 5,
    RETURNED_TO_SENDER: 5,
    CANCELLED: 5,
}
FINAL_STATUSES = frozenset({DELIVERED, RETURNED_TO_SENDER, CANCELLED})

FORWARD, SAME, BACKWARD = "forward", "same", "backward"

# T5.4 names the customer's faults (wrong address, parcel not collected); a failure is the
# customer's unless the courier reports one of its own.
CARRIER_FAULT_REASONS = frozenset(
    {"damaged", "lost", "destroyed", "carrier_error", "courier_error"}
)


def courier_step(current: str, target: str) -> str:
    """R14b: whether an event that would put a shipment in `target` moves it forward.

    Delivered and returned-to-sender are final; a failed delivery can still end with the
    parcel back at the shop, never with a later "delivered" (the order is already settled).
    """
    if current == target:
        return SAME
    if current in FINAL_STATUSES:
        return BACKWARD
    if current == DELIVERY_FAILED:
        return FORWARD if target == RETURNED_TO_SENDER else BACKWARD
    return FORWARD if STATUS_RANK[target] > STATUS_RANK[current] else BACKWARD


def failure_is_customers_fault(reason: str) -> bool:
    """R14c (T5.4): a failed or returned delivery is the customer's fault (wrong address,
    not collected, refused) unless the courier reports a fault of its own."""
    return (reason or "").strip().lower() not in CARRIER_FAULT_REASONS
