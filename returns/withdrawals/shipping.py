"""What withdrawals need from delivery, in one place.

- the Omniva return code of the order's outbound shipment (T7.5), shown to the customer;
- whether the goods have left: an outbound shipment still waiting for its registration
  with the courier can be stopped (R16, CRD Art 9(3)), a registered one cannot;
- the `return_delivered` courier event marks the goods of the order's open withdrawals
  received (R20): `returns.withdrawals.services.return_delivered` is registered with
  `delivery.services.on_return_delivered` from the app's `ready()`.
"""

from __future__ import annotations

from orders.models import PRE_DISPATCH, Order


def _outbound(order: Order):
    from delivery.models import Shipment, ShipmentDirection

    return Shipment.objects.filter(order=order, direction=ShipmentDirection.OUTBOUND)


def return_code(order: Order) -> str:
    """T7.5: the return code of the latest outbound shipment that has one."""
    codes = (
        _outbound(order)
        .exclude(return_code="")
        .order_by("-created_at", "-pk")
        .values_list("return_code", flat=True)
    )
    return codes.first() or ""


def goods_dispatched(order: Order) -> bool:
    """Have the goods left, or are they about to (a shipment registered with the courier)?
    Before dispatch, only shipments waiting for their registration (or stopped) exist."""
    from delivery.models import ShipmentStatus

    if order.status not in PRE_DISPATCH:
        return True
    return (
        _outbound(order)
        .exclude(status__in=[ShipmentStatus.PENDING, ShipmentStatus.CANCELLED])
        .exists()
    )


def stop_unregistered_shipments(*, order_id: int) -> int:
    """R16: a withdrawal before dispatch stops the outbound shipments not registered yet
    (delivery's service; the caller holds the order's lock). Returns how many."""
    from delivery.services import stop_unregistered_shipments as stop

    return stop(order_id=order_id, note="Withdrawal before dispatch (R16)")


def handle_return_delivered(arrival) -> int:
    """delivery's `on_return_delivered` callback (a `ReturnArrival`): the returned goods of
    the order reached the shop, by courier event or staff (R20). Idempotent."""
    from returns.withdrawals.services import return_delivered

    return return_delivered(order_id=arrival.order_id, at=arrival.arrived_at)


def handle_returned_to_sender(arrival) -> int:
    """delivery's `on_returned_to_sender` callback: an outbound parcel came back
    undelivered; the goods are back for the order's open withdrawals (R20, R21, R14c)."""
    from returns.withdrawals.services import returned_to_sender

    return returned_to_sender(
        order_id=arrival.order_id,
        at=arrival.arrived_at,
        line_ids=[line["line_id"] for line in arrival.lines if line.get("line_id")],
    )


def connect_return_delivered() -> None:
    """Called from the app's `ready()`."""
    from delivery.services import on_return_delivered, on_returned_to_sender

    on_return_delivered(handle_return_delivered)
    on_returned_to_sender(handle_returned_to_sender)
