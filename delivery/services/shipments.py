"""Shipments (R14a): staff record a barcode by hand, or the Omniva client registers the
parcel in the background through the outbox; either way the order is shipped, the
disclosure to Omniva is logged (R27) and the customer is emailed the tracking number, the
return code (T7.5) and the estimated delivery (R7).

Lock order everywhere in delivery: the order row first, then the shipment row.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from delivery import emails
from delivery.couriers import CourierError, Receiver, ShipmentRequest, get_courier
from delivery.models import RegistrationMethod, Shipment, ShipmentDirection, ShipmentStatus
from legal.models import Recipient
from legal.services.disclosures import record_disclosure
from orders.models import DeliveryMethod, LineStatus, Order, OrderStatus
from orders.services.account import money_account
from orders.services.locks import lock_order
from shop import outbox
from shop.errors import Conflict, InvalidInput, Refused
from shop.models import OutboxMessage

logger = logging.getLogger(__name__)

REGISTER_TOPIC = "delivery.register_shipment"
BARCODE = re.compile(r"^[A-Z0-9]{8,32}$")
SHIPPABLE = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)
DELIVERY_PURPOSE = "delivery"


def normalise_barcode(raw: str) -> str:
    value = re.sub(r"[\s-]", "", raw or "").upper()
    if not BARCODE.match(value):
        raise InvalidInput.single(
            "barcode",
            "invalid",
            str(_("A barcode is 8 to 32 letters and digits, for example CE123456789LV.")),
        )
    return value


def shipment_reference(shipment: Shipment) -> str:
    """Our id of the parcel at Omniva (`partnerShipmentId`): the same on every retry."""
    return f"{shipment.order.number}-{shipment.pk}"


def receiver_for(order: Order) -> Receiver:
    """R27: Omniva receives only name, phone, email and the parcel machine or address."""
    if order.delivery_method == DeliveryMethod.PARCEL_MACHINE and order.parcel_machine_id:
        return Receiver(
            name=order.customer_name,
            phone=order.phone,
            email=order.email,
            parcel_machine_zip=order.parcel_machine.zip,
        )
    return Receiver(
        name=order.customer_name,
        phone=order.phone,
        email=order.email,
        street=order.street,
        city=order.city,
        postal_code=order.postal_code,
        country=order.country or "LV",
    )


def disclosed_categories(order: Order) -> list[str]:
    place = (
        "parcel_machine" if order.delivery_method == DeliveryMethod.PARCEL_MACHINE else "address"
    )
    return ["name", "phone", "email", place]


def _order_lines(order: Order) -> list[dict[str, Any]]:
    return [
        {"line_id": line.pk, "sku": line.sku, "quantity": line.quantity_to_ship}
        for line in order.lines.filter(status=LineStatus.ORDERED).order_by("pk")
        if line.quantity_to_ship  # R16: units withdrawn from before dispatch stay home
    ]


def _check_shippable(order: Order) -> None:
    if order.status not in SHIPPABLE:  # a split order may ship after the first delivery
        raise Refused(
            "order_not_shippable",
            "Only a paid order can be shipped.",
            status=order.status,
            cancel_reason=order.cancel_reason,
        )
    # R13 with R32: a dearer substitute accepted after payment leaves money open; the goods
    # wait for it (or for the customer's decline).
    if order.status == OrderStatus.PAID:
        open_amount = money_account(order).open_amount
        if open_amount > 0:
            raise Refused(
                "payment_open",
                "Part of the order is not paid yet: it ships once the rest is paid.",
                amount_open=str(open_amount),
            )


def _check_barcode_free(barcode: str) -> None:
    if Shipment.objects.filter(barcode=barcode).exists():
        raise Conflict(
            "barcode_already_registered",
            "This barcode is already recorded for a shipment.",
            barcode=barcode,
        )


def _complete_registration(*, order: Order, shipment: Shipment, at: datetime) -> None:
    """The order (locked by the caller) is shipped; disclosure (R27); email after commit."""
    if order.status == OrderStatus.PAID:
        order.ship(at=at)
        order.save()
    record_disclosure(
        recipient=Recipient.OMNIVA,
        categories=disclosed_categories(order),
        purpose=DELIVERY_PURPOSE,
        at=at,
        order=order,
        reference=f"shipment {shipment.pk} {shipment.barcode}",
    )
    emails.shipment_registered(order=order, shipment=shipment)


def register_shipment(
    *,
    order_id: int,
    barcode: str | None = None,
    lines: list[dict[str, Any]] | None = None,
    by=None,
    at: datetime | None = None,
) -> Shipment:
    """R14a: a parcel for a paid order.

    With a `barcode`: staff registered it in Omniva's e-service; it is recorded at once.
    Without: the Omniva client registers it in the background (outbox topic
    `delivery.register_shipment`); the shipment waits as `pending` until then.
    """
    at = at or timezone.now()
    if barcode is not None:
        barcode = normalise_barcode(barcode)
    with transaction.atomic():
        order = lock_order(order_id)
        _check_shippable(order)
        if barcode is None:
            _check_courier_can_register()
        shipment = Shipment(
            order=order,
            direction=ShipmentDirection.OUTBOUND,
            lines=lines if lines is not None else _order_lines(order),
            created_by=by,
            created_at=at,
        )
        shipment.save()
        _register(order=order, shipment=shipment, barcode=barcode, at=at)
    return shipment


def register_pending_shipment(
    *, shipment_id: int, barcode: str | None = None, at: datetime | None = None
) -> Shipment:
    """Staff register a shipment still waiting: a replacement (R24), one whose Omniva
    registration was refused, or one whose automatic retries ran out. With a barcode it
    is recorded by hand; without, "Register with Omniva" runs again in the background."""
    at = at or timezone.now()
    if barcode is not None:
        barcode = normalise_barcode(barcode)
    with transaction.atomic():
        order_id = Shipment.objects.values_list("order_id", flat=True).get(pk=shipment_id)
        order = lock_order(order_id)
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if shipment.status != ShipmentStatus.PENDING:
            raise Refused(
                "shipment_not_pending",
                "Only a shipment waiting for its registration can be registered.",
                status=shipment.status,
                barcode=shipment.barcode,
            )
        if barcode is None:
            _check_courier_can_register()
        if order.status == OrderStatus.CANCELLED:
            raise Refused("order_cancelled", "The order is cancelled.")
        if shipment.registration_error:
            shipment.registration_error = ""
            shipment.save(update_fields=["registration_error"])
        _register(order=order, shipment=shipment, barcode=barcode, at=at)
    return shipment


# Kept for the admin action's name: "Register with Omniva" on a waiting shipment.
def retry_registration(*, shipment_id: int) -> Shipment:
    return register_pending_shipment(shipment_id=shipment_id)


def _check_courier_can_register() -> None:
    courier = get_courier()
    if not courier.can_register:
        raise Refused("courier_off", courier.off_message())


def _register(*, order: Order, shipment: Shipment, barcode: str | None, at: datetime) -> None:
    """A saved pending shipment (order locked): by hand now, or with Omniva after commit."""
    if barcode is None:
        _publish_registration(shipment)
        return
    _check_barcode_free(barcode)
    shipment.register(barcode=barcode, via=RegistrationMethod.BY_HAND, at=at)
    try:
        with transaction.atomic():
            shipment.save()
    except IntegrityError as exc:  # a concurrent request recorded it first
        raise Conflict(
            "barcode_already_registered",
            "This barcode is already recorded for a shipment.",
            barcode=barcode,
        ) from exc
    _complete_registration(order=order, shipment=shipment, at=at)


def create_replacement_shipment(
    *, order_id: int, lines: list[dict[str, Any]], reason: str = "", by=None
) -> Shipment:
    """R24 (T6.6): a free replacement ships as a pending outbound shipment of the given
    lines; no fee, the order's status stays (it was delivered). Staff register it when
    the goods are packed (barcode by hand, or "Register with Omniva")."""
    with transaction.atomic():
        order = lock_order(order_id)
        if order.status == OrderStatus.CANCELLED:
            raise Refused("order_cancelled", "The order is cancelled.")
        shipment = Shipment(
            order=order,
            direction=ShipmentDirection.OUTBOUND,
            lines=list(lines),
            replacement=True,
            note=reason[:300],
            created_by=by,
        )
        shipment.save()
    return shipment


def stop_unregistered_shipments(*, order_id: int, note: str = "") -> int:
    """R16 (CRD Art 9(3)), R14a: a withdrawal before dispatch or a cancellation stops the
    outbound shipments not registered yet; returns how many. A registered parcel is not
    stopped here."""
    now = timezone.now()
    with transaction.atomic():
        lock_order(order_id)
        pending = list(
            Shipment.objects.select_for_update()
            .filter(
                order_id=order_id,
                direction=ShipmentDirection.OUTBOUND,
                status=ShipmentStatus.PENDING,
            )
            .order_by("pk")
        )
        for shipment in pending:
            shipment.cancel(at=now, note=note)
            shipment.save()
    return len(pending)


def stop_shipments_of_cancelled_order(order: Order) -> None:
    """`orders.services.lifecycle.on_order_cancelled` callback (inside the cancellation's
    transaction, the order locked): its shipments waiting for registration are stopped,
    so the background registration finds nothing to send (R14a, R27). An order never paid
    has no shipments (only a paid order ships): no query for the deadline jobs."""
    if order.paid_at is None:
        return
    stop_unregistered_shipments(order_id=order.pk, note=f"Order cancelled ({order.cancel_reason})")


def _publish_registration(shipment: Shipment) -> None:
    attempt = (
        OutboxMessage.objects.filter(
            topic=REGISTER_TOPIC, dedupe_key__startswith=f"shipment-register-{shipment.pk}-"
        ).count()
        + 1
    )
    outbox.publish(
        REGISTER_TOPIC,
        {"shipment_id": shipment.pk},
        dedupe_key=f"shipment-register-{shipment.pk}-{attempt}",
    )


@outbox.handler(REGISTER_TOPIC)
def _register_with_courier_handler(payload: dict[str, Any], message: OutboxMessage) -> None:
    register_with_courier(
        shipment_id=int(payload["shipment_id"]),
        final_attempt=message.attempts + 1 >= outbox.MAX_ATTEMPTS,
    )


def register_with_courier(*, shipment_id: int, final_attempt: bool = True) -> Shipment:
    """The background half of `register_shipment`. Idempotent: a shipment that already has
    its barcode is left alone, and the same `partnerShipmentId` goes to Omniva every time.

    A network error or 5xx is raised again (the outbox retries with backoff) unless this
    is the final attempt; a refusal (`failedShipments`, 400, 401) is recorded on the
    shipment for staff, who correct the cause and use "Register with Omniva" again.
    """
    with transaction.atomic():
        order_id = Shipment.objects.values_list("order_id", flat=True).get(pk=shipment_id)
        order = lock_order(order_id)
        shipment = Shipment.objects.select_for_update().select_related("order").get(pk=shipment_id)
        if shipment.status != ShipmentStatus.PENDING:
            return shipment
        if order.status not in SHIPPABLE:
            # Cancelled (or no longer paid) while the registration waited: nothing goes to
            # Omniva, nothing is disclosed, no email; the parcel is stopped (R14a, R27).
            shipment.cancel(at=timezone.now(), note=f"Order {order.status}: not registered")
            shipment.save()
            logger.info("shipment %s not registered: order %s", shipment.pk, order.status)
            return shipment
        courier = get_courier()
        try:
            registration = courier.register_shipment(
                ShipmentRequest(
                    reference=shipment_reference(shipment), receiver=receiver_for(order)
                )
            )
            barcode = normalise_barcode(registration.barcode)
        except CourierError as exc:
            if exc.retryable and not final_attempt:
                raise
            return _record_registration_error(shipment, exc.message)
        except InvalidInput:
            return _record_registration_error(
                shipment, f"Omniva answered with an unusable barcode: {registration.barcode!r}"
            )
        if Shipment.objects.filter(barcode=barcode).exclude(pk=shipment.pk).exists():
            return _record_registration_error(
                shipment, f"Omniva answered with barcode {barcode}, already used by a shipment."
            )
        label = None
        try:
            label = courier.fetch_label(barcode)
        except CourierError as exc:  # the parcel is registered; staff fetch the label later
            logger.warning("label of shipment %s not fetched: %s", shipment.pk, exc.message)
        now = timezone.now()
        shipment.register(
            barcode=barcode,
            via=RegistrationMethod.COURIER_API,
            at=now,
            return_code=registration.return_code,
        )
        shipment.label_pdf = label
        shipment.save()
        _complete_registration(order=order, shipment=shipment, at=now)
    return shipment


def _record_registration_error(shipment: Shipment, message: str) -> Shipment:
    logger.warning("shipment %s not registered with the courier: %s", shipment.pk, message)
    shipment.registration_error = message[:500]
    shipment.save(update_fields=["registration_error"])
    return shipment


def fetch_label(*, shipment_id: int) -> Shipment:
    """Download the label PDF again (Omniva `shipments/package-labels`)."""
    shipment = Shipment.objects.get(pk=shipment_id)
    if not shipment.barcode:
        raise Refused("no_barcode", "The shipment has no barcode yet.")
    courier = get_courier()
    if not courier.can_register:
        raise Refused("courier_off", courier.off_message())
    try:
        pdf = courier.fetch_label(shipment.barcode)
    except CourierError as exc:
        raise Refused("label_unavailable", exc.message, barcode=shipment.barcode) from exc
    Shipment.objects.filter(pk=shipment_id).update(label_pdf=pdf)
    shipment.label_pdf = pdf
    return shipment


def register_return_shipment(
    *,
    order_id: int,
    barcode: str | None = None,
    return_of_id: int | None = None,
    lines: list[dict[str, Any]] | None = None,
    by=None,
    at: datetime | None = None,
) -> Shipment:
    """R20: a parcel the customer sends back (recorded by staff, or by the withdrawal
    flow). Its `return_delivered` event (or staff, `record_return_arrival`) tells the
    `on_return_delivered` callbacks that the goods arrived."""
    at = at or timezone.now()
    if barcode is not None:
        barcode = normalise_barcode(barcode)
    with transaction.atomic():
        order = lock_order(order_id)
        if barcode is not None:
            _check_barcode_free(barcode)
        return_of = None
        if return_of_id is not None:
            return_of = Shipment.objects.get(
                pk=return_of_id, order=order, direction=ShipmentDirection.OUTBOUND
            )
        shipment = Shipment(
            order=order,
            direction=ShipmentDirection.RETURN,
            return_of=return_of,
            lines=lines if lines is not None else (return_of.lines if return_of else []),
            created_by=by,
            created_at=at,
        )
        shipment.register(barcode=barcode, via=RegistrationMethod.BY_HAND, at=at)
        shipment.save()
    return shipment


def return_leg(outbound: Shipment, *, at: datetime) -> Shipment:
    """The return parcel of an outbound shipment sent back with its return code (T7.5);
    made on its first courier event (the caller holds the order's lock)."""
    existing = outbound.returns.select_for_update().order_by("pk").first()
    if existing is not None:
        return existing
    code = outbound.return_code or None
    if code is not None and Shipment.objects.filter(barcode=code).exists():
        code = None
    shipment = Shipment(
        order_id=outbound.order_id,
        direction=ShipmentDirection.RETURN,
        return_of=outbound,
        lines=outbound.lines,
        created_at=at,
    )
    shipment.register(barcode=code, via=RegistrationMethod.RETURN_CODE, at=at)
    shipment.save()
    return shipment
