"""Courier events (R14b, R14c, R20): one service for the webhook and the tracking poller.

Every event is stored raw once under its `(source, event_id)`; the same event again
answers `duplicate` and changes nothing. An event for an unknown barcode is kept as
`unmatched` for staff. A known one goes through `EVENT_HANDLERS` (event name -> handler);
a shipment only ever moves forward (`delivery.rules.courier_step`): an event that would
move it back is kept and answers `stale`.

Effects, only when a shipment moves:
- outbound `delivered`: the order is delivered (`Order.deliver`) when the last of its
  outbound parcels (replacements for claims excluded) is delivered, at that parcel's time;
  an order already delivered by an earlier parcel has its delivery time moved on
  (`Order.record_delivery_time`): the withdrawal period (R16), the conformity period (R23)
  and the retention clock (R28) start there. A `delivered` after a `delivery_failed`
  still applies;
- outbound `delivery_failed` / `returned_to_sender` with a reason that names the
  customer's fault (`delivery.rules.CUSTOMER_FAULT_REASONS`): the order is cancelled
  (`delivery_failed`), the goods refunded, the fee kept (R14c, T5.4). An empty or unknown
  reason leaves the order shipped and flags the event for staff (`needs_review`);
- outbound `returned_to_sender` after the customer withdrew: the `on_returned_to_sender`
  callbacks count the goods as back for the withdrawal (its refund is released, R21);
  the order is not cancelled for the customer's fault;
- `return_delivered` (a return parcel arrived): the `on_return_delivered` callbacks run in
  the same transaction, so the withdrawal flow can mark its goods received (R20).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone
from django_fsm import can_proceed

from delivery import emails, rules
from delivery.models import (
    PARCEL_ON_ITS_WAY_STATUSES,
    CourierEvent,
    CourierEventChannel,
    CourierEventName,
    CourierEventResult,
    Shipment,
    ShipmentDirection,
    ShipmentStatus,
)
from delivery.services.shipments import return_leg
from legal.services import ledger
from orders.models import CancelReason, Order, OrderStatus
from orders.services.lifecycle import cancel_order
from orders.services.locks import lock_order
from shop.db import insert_once
from shop.errors import Refused

logger = logging.getLogger(__name__)

SOURCE_OMNIVA = "omniva"
APPLIED, DUPLICATE, STALE, UNMATCHED = "applied", "duplicate", "stale", "unmatched"


@dataclass(frozen=True)
class CourierEventData:
    """One courier event as the webhook contract names it (DESIGN.md section 10)."""

    event_id: str
    barcode: str
    event: str
    occurred_at: datetime
    location: str = ""
    reason: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyResult:
    result: str  # applied | duplicate | stale | unmatched
    shipment_id: int | None = None


# --- The hook for returned goods (R20) --------------------------------------------------


@dataclass(frozen=True)
class ReturnArrival:
    """Returned goods arrived at the shop: handed to every `on_return_delivered` callback."""

    shipment_id: int
    order_id: int
    barcode: str | None
    return_of_id: int | None
    arrived_at: datetime
    lines: list[dict[str, Any]]


ReturnCallback = Callable[[ReturnArrival], None]
_return_callbacks: list[ReturnCallback] = []


def on_return_delivered(func: ReturnCallback) -> ReturnCallback:
    """Register a function called (inside the transaction, after the return shipment is
    marked delivered) whenever returned goods arrive, by courier event or by staff.

        from delivery.services import on_return_delivered

        @on_return_delivered
        def goods_arrived(arrival: ReturnArrival) -> None: ...

    Callbacks must be idempotent; an exception rolls the whole event back (it is then not
    stored, and the courier's retry or the next poll delivers it again).
    """
    if func not in _return_callbacks:
        _return_callbacks.append(func)
    return func


def _return_arrived(shipment: Shipment, at: datetime) -> None:
    arrival = ReturnArrival(
        shipment_id=shipment.pk,
        order_id=shipment.order_id,
        barcode=shipment.barcode,
        return_of_id=shipment.return_of_id,
        arrived_at=at,
        lines=list(shipment.lines or []),
    )
    for callback in list(_return_callbacks):
        callback(arrival)


# --- The hook for parcels returned to sender (R14c, R20, R21) ------------------------------

SenderCallback = Callable[[ReturnArrival], int]
_sender_callbacks: list[SenderCallback] = []


def on_returned_to_sender(func: SenderCallback) -> SenderCallback:
    """Register a function called (inside the transaction) when an outbound parcel of an
    order comes back to the shop undelivered. It answers how many open processes took the
    goods as theirs (e.g. withdrawals waiting for them); any: the return is not the
    customer's fault (R14c) and the order is not cancelled. Callbacks must be idempotent."""
    if func not in _sender_callbacks:
        _sender_callbacks.append(func)
    return func


def _returned_to_sender(shipment: Shipment, at: datetime) -> int:
    arrival = ReturnArrival(
        shipment_id=shipment.pk,
        order_id=shipment.order_id,
        barcode=shipment.barcode,
        return_of_id=None,
        arrived_at=at,
        lines=list(shipment.lines or []),
    )
    return sum(callback(arrival) or 0 for callback in list(_sender_callbacks))


def _flag_for_staff(event: CourierEvent, why: str) -> None:
    """R14c: the event goes to the staff queue (courier events "waiting for staff")."""
    event.needs_review = True
    event.review_reason = why[:200]
    if event.pk is not None:
        event.save(update_fields=["needs_review", "review_reason"])


# --- Moving a shipment -------------------------------------------------------------------

_TRANSITIONS = {
    ShipmentStatus.REGISTERED: None,  # registration happens only through our services
    ShipmentStatus.IN_TRANSIT: "mark_in_transit",
    ShipmentStatus.READY_FOR_PICKUP: "mark_ready_for_pickup",
    ShipmentStatus.DELIVERED: "mark_delivered",
    ShipmentStatus.DELIVERY_FAILED: "mark_delivery_failed",
    ShipmentStatus.RETURNED_TO_SENDER: "mark_returned_to_sender",
}


def _plan(shipment: Shipment, target: str) -> tuple[str, Callable[..., None] | None]:
    """(answer, transition to run or None), pure: forward moves, the same state is a
    harmless repeat, back is stale."""
    step = rules.courier_step(shipment.status, target)
    if step == rules.SAME:
        return APPLIED, None
    name = _TRANSITIONS.get(target)
    method = getattr(shipment, name) if name else None
    if step == rules.BACKWARD or method is None or not can_proceed(method):
        return STALE, None
    return APPLIED, method


def _move(shipment: Shipment, target: str, event: CourierEvent) -> tuple[str, bool]:
    """(answer, moved): the shipment moved forward and saved, or left as it is."""
    answer, method = _plan(shipment, target)
    if method is None:
        return answer, False
    kwargs: dict[str, Any] = {"at": event.occurred_at}
    if target in (ShipmentStatus.DELIVERY_FAILED, ShipmentStatus.RETURNED_TO_SENDER):
        kwargs["reason"] = event.reason
    method(**kwargs)
    shipment.save()
    return APPLIED, True


# (shipment, its order locked, or None for PROGRESS_ONLY events, event) -> (answer, shipment)
Handler = Callable[[Shipment, Order | None, CourierEvent], tuple[str, Shipment]]


def _progress(target: str) -> Handler:
    def handle(shipment: Shipment, order: Order, event: CourierEvent) -> tuple[str, Shipment]:
        return _move(shipment, target, event)[0], shipment

    return handle


def _delivered(shipment: Shipment, order: Order, event: CourierEvent) -> tuple[str, Shipment]:
    if shipment.direction == ShipmentDirection.RETURN:
        return _return_delivered(shipment, order, event)
    answer, moved = _move(shipment, ShipmentStatus.DELIVERED, event)
    if moved and not shipment.replacement:
        _order_delivered(order, shipment, event)
    return answer, shipment


def goods_delivered_at(order_id: int) -> datetime | None:
    """R14b, R16: when the order's goods were delivered: the delivery of the last of its
    outbound parcels (replacements for claims excluded); None while one is on its way."""
    parcels = (
        Shipment.objects.filter(
            order_id=order_id, direction=ShipmentDirection.OUTBOUND, replacement=False
        )
        .order_by()
        .values_list("status", "delivered_at")
    )
    return rules.order_delivery_time(list(parcels))


def parcel_on_its_way(order: Order) -> bool:
    """R16: is an outbound parcel of the order's goods (not a replacement) still waiting
    for registration or travelling? `orders.selectors.on_goods_on_their_way` callback."""
    return Shipment.objects.filter(
        order_id=order.pk,
        direction=ShipmentDirection.OUTBOUND,
        replacement=False,
        status__in=PARCEL_ON_ITS_WAY_STATUSES,
    ).exists()


def _order_delivered(order: Order, shipment: Shipment, event: CourierEvent) -> None:
    """R14b, R16: the order is delivered when its last outbound parcel is, at that
    parcel's time; an order delivered already (a parcel shipped after the first arrived)
    has its delivery time moved on, never back."""
    if order.status == OrderStatus.CANCELLED:
        logger.warning(
            "shipment %s delivered for cancelled order %s: left for staff", shipment.pk, order.pk
        )
        _flag_for_staff(event, "Delivered, but the order is cancelled.")
        return
    if order.status not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CLOSED):
        logger.warning(
            "shipment %s delivered for order %s in status %s: left for staff",
            shipment.pk,
            order.pk,
            order.status,
        )
        _flag_for_staff(event, "Delivered, but the order was not shipped.")
        return
    emails.shipment_delivered(order=order, shipment=shipment)
    at = goods_delivered_at(order.pk)
    if at is None:
        return  # another parcel of the order's goods is still on its way (R16)
    if order.status == OrderStatus.SHIPPED:
        order.deliver(at=at)
        order.save()
    elif order.delivered_at is None or at > order.delivered_at:
        order.record_delivery_time(at)
        order.save(update_fields=["delivered_at"])
    else:
        return
    # R28: retention dates count from delivery; the ledger follows after commit.
    ledger.order_delivered_later(order_id=order.pk)


def _failed(target: str) -> Handler:
    def handle(shipment: Shipment, order: Order, event: CourierEvent) -> tuple[str, Shipment]:
        answer, moved = _move(shipment, target, event)
        if moved and shipment.direction == ShipmentDirection.OUTBOUND and not shipment.replacement:
            _outbound_failed(order, shipment, event, target)
        return answer, shipment

    return handle


def _outbound_failed(order: Order, shipment: Shipment, event: CourierEvent, target: str) -> None:
    """R14c, R20: what an outbound parcel that failed or came back means for its order."""
    if target == ShipmentStatus.RETURNED_TO_SENDER and _returned_to_sender(
        shipment, event.occurred_at
    ):
        return  # the goods of a withdrawal came back: not the customer's fault (R21)
    if order.status != OrderStatus.SHIPPED:
        if order.status != OrderStatus.CANCELLED:
            _flag_for_staff(event, "Delivery failed, but the order is not shipped any more.")
        return
    # The reason the shipment carries: a return to sender keeps the failure's reason.
    reason = event.reason or shipment.failure_reason
    if rules.failure_is_customers_fault(reason) and _other_parcels_of_the_goods(shipment):
        # A split order: goods of another parcel arrived or travel; cancelling the whole
        # order would refund them too. Staff settle what this parcel carried.
        _flag_for_staff(event, "Customer's fault, but other parcels of the order count.")
    elif rules.failure_is_customers_fault(reason):
        _cancel_for_failed_delivery(order, shipment)
    else:
        _flag_for_staff(
            event,
            f"Reason {reason!r} names no fault of the customer's: the order stays shipped."
            if reason
            else "No reason given: the order stays shipped.",
        )


def _other_parcels_of_the_goods(shipment: Shipment) -> bool:
    """Another outbound parcel of the order's goods delivered or still on its way?"""
    return (
        Shipment.objects.filter(
            order_id=shipment.order_id, direction=ShipmentDirection.OUTBOUND, replacement=False
        )
        .exclude(pk=shipment.pk)
        .filter(status__in=[ShipmentStatus.DELIVERED, *PARCEL_ON_ITS_WAY_STATUSES])
        .exists()
    )


def _cancel_for_failed_delivery(order: Order, shipment: Shipment) -> None:
    """R14c (T5.4): the goods are not sent again; cancelled, goods refunded, fee kept
    (`orders.services.payments.FEE_RETAINED_FOR`)."""
    cancel_order(order_id=order.pk, reason=CancelReason.DELIVERY_FAILED, at=timezone.now())


def _return_accepted(shipment: Shipment, order: Order, event: CourierEvent) -> tuple[str, Shipment]:
    leg = shipment if shipment.direction == ShipmentDirection.RETURN else None
    leg = leg or return_leg(shipment, at=event.occurred_at)
    return _move(leg, ShipmentStatus.IN_TRANSIT, event)[0], leg


def _return_delivered(
    shipment: Shipment, order: Order, event: CourierEvent
) -> tuple[str, Shipment]:
    leg = shipment if shipment.direction == ShipmentDirection.RETURN else None
    leg = leg or return_leg(shipment, at=event.occurred_at)
    answer, moved = _move(leg, ShipmentStatus.DELIVERED, event)
    if moved:
        _return_arrived(leg, event.occurred_at)
    return answer, leg


# Events that only move the shipment itself: they need neither the order nor its lock.
PROGRESS_ONLY = frozenset(
    {
        CourierEventName.REGISTERED,
        CourierEventName.ACCEPTED,
        CourierEventName.IN_TRANSIT,
        CourierEventName.READY_FOR_PICKUP,
    }
)
# Where each event moves the shipment whose barcode it names.
TARGETS = {
    CourierEventName.REGISTERED: ShipmentStatus.REGISTERED,
    CourierEventName.ACCEPTED: ShipmentStatus.IN_TRANSIT,
    CourierEventName.IN_TRANSIT: ShipmentStatus.IN_TRANSIT,
    CourierEventName.READY_FOR_PICKUP: ShipmentStatus.READY_FOR_PICKUP,
    CourierEventName.DELIVERED: ShipmentStatus.DELIVERED,
    CourierEventName.DELIVERY_FAILED: ShipmentStatus.DELIVERY_FAILED,
    CourierEventName.RETURNED_TO_SENDER: ShipmentStatus.RETURNED_TO_SENDER,
    CourierEventName.RETURN_ACCEPTED: ShipmentStatus.IN_TRANSIT,
    CourierEventName.RETURN_DELIVERED: ShipmentStatus.DELIVERED,
}
EVENT_HANDLERS: dict[str, Handler] = {
    **{name: _progress(TARGETS[name]) for name in PROGRESS_ONLY},
    CourierEventName.DELIVERED: _delivered,
    CourierEventName.DELIVERY_FAILED: _failed(ShipmentStatus.DELIVERY_FAILED),
    CourierEventName.RETURNED_TO_SENDER: _failed(ShipmentStatus.RETURNED_TO_SENDER),
    CourierEventName.RETURN_ACCEPTED: _return_accepted,
    CourierEventName.RETURN_DELIVERED: _return_delivered,
}


# --- The service -------------------------------------------------------------------------


def _find_shipment(barcode: str) -> tuple[int, int] | None:
    """(shipment id, order id) by barcode, or by the return code a parcel was sent back
    with (T7.5): such events belong to the return leg of that outbound shipment."""
    found = Shipment.objects.filter(barcode=barcode).values_list("pk", "order_id").first()
    if found is None:
        found = (
            Shipment.objects.filter(return_code=barcode, direction=ShipmentDirection.OUTBOUND)
            .values_list("pk", "order_id")
            .first()
        )
    return found


# Events about a return: on an outbound barcode they first make the return leg.
RETURN_EVENTS = frozenset({CourierEventName.RETURN_ACCEPTED, CourierEventName.RETURN_DELIVERED})
STORED_RESULT = {APPLIED: CourierEventResult.APPLIED, STALE: CourierEventResult.STALE}


def _record(stored: CourierEvent, answer: str, shipment: Shipment) -> ApplyResult:
    stored.shipment = shipment
    stored.result = STORED_RESULT[answer]
    stored.save(update_fields=["shipment", "result"])
    return ApplyResult(answer, shipment.pk)


def _apply_stored(stored: CourierEvent) -> ApplyResult:
    """Apply a stored event to its shipment (inside the caller's transaction)."""
    found = _find_shipment(stored.barcode)
    if found is None:
        stored.result = CourierEventResult.UNMATCHED
        stored.save(update_fields=["result"])
        return ApplyResult(UNMATCHED)
    shipment_id, order_id = found
    order = lock_order(order_id)
    shipment = Shipment.objects.select_for_update().defer("label_pdf").get(pk=shipment_id)
    if shipment.return_code == stored.barcode and shipment.barcode != stored.barcode:
        shipment = return_leg(shipment, at=stored.occurred_at)  # sent back with the code
    answer, shipment = EVENT_HANDLERS[stored.event](shipment, order, stored)
    return _record(stored, answer, shipment)


def _apply_to_named_shipment(stored: CourierEvent) -> ApplyResult | None:
    """The hot path: the event names a shipment's own barcode. Lock (the order, unless the
    event only moves the shipment, then) the shipment, decide the answer, store the event
    with it once, apply it. None when the barcode is not a shipment's own or the event
    makes a return leg: the general path (`_apply_stored`) takes those."""
    order = None
    if stored.event not in PROGRESS_ONLY:
        order = (
            Order.objects.select_for_update()
            .filter(
                pk=Subquery(Shipment.objects.filter(barcode=stored.barcode).values("order_id")[:1])
            )
            .first()
        )
        if order is None:
            return None
    shipment = (
        Shipment.objects.select_for_update()
        .defer("label_pdf")
        .filter(barcode=stored.barcode)
        .first()
    )
    if shipment is None or (
        stored.event in RETURN_EVENTS and shipment.direction != ShipmentDirection.RETURN
    ):
        return None
    answer, _transition = _plan(shipment, TARGETS[stored.event])
    stored.shipment = shipment
    stored.result = STORED_RESULT[answer]
    if not insert_once(stored, ["source", "event_id"]):
        return ApplyResult(DUPLICATE)
    applied, shipment = EVENT_HANDLERS[stored.event](shipment, order, stored)
    if applied != answer:  # the handler decided otherwise: its answer is the record
        return _record(stored, applied, shipment)
    return ApplyResult(answer, shipment.pk)


def apply_courier_event(
    *,
    event: CourierEventData,
    source: str = SOURCE_OMNIVA,
    channel: str = CourierEventChannel.WEBHOOK,
    received_at: datetime | None = None,
) -> ApplyResult:
    """R14b: store the raw event once, then apply it. Used by the webhook and the poller."""
    if event.event not in EVENT_HANDLERS:
        raise ValueError(f"unknown courier event {event.event!r}")
    stored = CourierEvent(
        source=source,
        event_id=event.event_id,
        channel=channel,
        barcode=event.barcode,
        event=event.event,
        occurred_at=event.occurred_at,
        location=event.location[:200],
        reason=event.reason[:200],
        payload=event.payload,
        received_at=received_at or timezone.now(),
    )
    with transaction.atomic():
        result = _apply_to_named_shipment(stored)
        if result is not None:
            return result
        if not insert_once(stored, ["source", "event_id"]):
            return ApplyResult(DUPLICATE)
        return _apply_stored(stored)


def rematch_events(*, event_ids: list[int]) -> dict[str, int]:
    """Staff: apply unmatched events again, e.g. after recording the missing barcode."""
    report: dict[str, int] = {}
    for event_id in sorted(event_ids):
        with transaction.atomic():
            stored = (
                CourierEvent.objects.select_for_update()
                .filter(pk=event_id, result=CourierEventResult.UNMATCHED)
                .first()
            )
            if stored is None:
                continue
            answer = _apply_stored(stored).result
        report[answer] = report.get(answer, 0) + 1
    return report


def dismiss_events(*, event_ids: list[int], note: str = "") -> int:
    """Staff: an unmatched event that belongs to no shipment of ours leaves the queue."""
    return CourierEvent.objects.filter(
        pk__in=event_ids, result=CourierEventResult.UNMATCHED
    ).update(result=CourierEventResult.DISMISSED, note=note[:300])


def mark_events_reviewed(*, event_ids: list[int], note: str = "") -> int:
    """Staff: events in the review queue (R14c) are handled; they leave the queue."""
    return CourierEvent.objects.filter(pk__in=event_ids, needs_review=True).update(
        needs_review=False, note=note[:300]
    )


def record_return_arrival(*, shipment_id: int, at: datetime | None = None) -> Shipment:
    """R20: staff record that a return parcel arrived (no courier event came)."""
    at = at or timezone.now()
    with transaction.atomic():
        order_id = Shipment.objects.values_list("order_id", flat=True).get(pk=shipment_id)
        lock_order(order_id)
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if shipment.direction != ShipmentDirection.RETURN:
            raise Refused("not_a_return", "Only a return shipment can arrive at the shop.")
        step = rules.courier_step(shipment.status, ShipmentStatus.DELIVERED)
        if step == rules.SAME:
            return shipment
        if step == rules.BACKWARD or not can_proceed(shipment.mark_delivered):
            raise Refused(
                "shipment_closed",
                "The return shipment can no longer arrive.",
                status=shipment.status,
            )
        shipment.mark_delivered(at=at)
        shipment.save()
        _return_arrived(shipment, at)
    return shipment
