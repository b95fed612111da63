"""Delivery rules as arithmetic, pure."""

from __future__ import annotations

from datetime import date, datetime
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

# R14c (T5.4): the courier reasons that name the customer's fault, the only ones that
# cancel an order (goods refunded, fee kept). Anything else (empty, unknown, the courier's
# own fault) leaves the order shipped and puts the event in the staff queue.
CUSTOMER_FAULT_REASONS = frozenset(
    {
        "not_collected",  # left in the parcel machine / at the post office, not picked up
        "not_picked_up",
        "refused",  # the customer refused to accept the parcel
        "refused_by_recipient",
        "wrong_address",  # the address the customer gave is wrong or incomplete
        "address_incorrect",
        "incomplete_address",
    }
)


def courier_step(current: str, target: str) -> str:
    """R14b: whether an event that would put a shipment in `target` moves it forward.

    Delivered and returned-to-sender are final; a failed delivery can still end with the
    parcel delivered after all (a second attempt) or back at the shop.
    """
    if current == target:
        return SAME
    if current in FINAL_STATUSES:
        return BACKWARD
    if current == DELIVERY_FAILED:
        return FORWARD if target in (DELIVERED, RETURNED_TO_SENDER) else BACKWARD
    return FORWARD if STATUS_RANK[target] > STATUS_RANK[current] else BACKWARD


def normalised_reason(reason: str) -> str:
    """A courier reason as a key: lower case, words joined by underscores
    ("Not collected" -> "not_collected")."""
    return "_".join((reason or "").replace("-", " ").replace("_", " ").lower().split())


def failure_is_customers_fault(reason: str) -> bool:
    """R14c (T5.4): only a reason that names the customer's fault (not collected, refused,
    wrong address given by the customer) counts; an empty or unknown one does not."""
    return normalised_reason(reason) in CUSTOMER_FAULT_REASONS


# --- Parcels and the order's delivery (R14b, R16) ---------------------------------------


def order_delivery_time(parcels: list[tuple[str, datetime | None]]) -> datetime | None:
    """R14b, R16: the order's goods are delivered when the last of its outbound parcels
    (replacements for claims excluded: the caller leaves them out) is delivered; the time
    is that parcel's delivery. `parcels` are (status, delivered_at); None while one is
    still waiting or travelling (pending, registered, in transit, ready for pickup, failed
    but not yet back), or when none was delivered. A stopped or returned parcel is no
    longer on its way and does not count."""
    delivered = [at for status, at in parcels if status == DELIVERED and at is not None]
    if not delivered or any(status not in FINAL_STATUSES for status, _at in parcels):
        return None
    return max(delivered)
