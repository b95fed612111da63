"""Customer emails of the delivery app, queued through the outbox (sent after commit)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from delivery.couriers import get_courier
from delivery.models import Shipment
from delivery.rules import estimated_delivery
from orders import links
from orders.models import Order
from orders.selectors import withdrawal_deadline
from shop.calendar import riga_date
from shop.mail import context_builder, queue_email
from shop.selectors import latvian_calendar


def _base(order) -> dict:
    return {
        "order": order,
        "shop": settings.SHOP,
        "order_url": links.order_url(order),
        "site_url": settings.SITE_URL,
    }


def shipment_registered(*, order, shipment: Shipment) -> None:
    """R14a: the tracking number and link, the return code (T7.5), the estimate (R7)."""
    estimate = None
    if order.paid_at and not shipment.replacement:
        estimate = estimated_delivery(paid_on=riga_date(order.paid_at), calendar=latvian_calendar())
    queue_email(
        to=order.email,
        template="shipment_registered",
        context={
            **_base(order),
            "shipment": shipment,
            "tracking_url": get_courier().tracking_url(shipment.barcode),
            "estimate": estimate,
        },
        dedupe_key=f"shipment-registered-{shipment.pk}",
    )


def shipment_delivered(*, order, shipment: Shipment) -> None:
    """R14b, R16: delivered; the withdrawal period runs from here. Rendered when sent
    (after commit): the courier webhook pays one INSERT for it."""
    queue_email(
        to=order.email,
        template="shipment_delivered",
        refs={"order_id": order.pk, "shipment_id": shipment.pk},
        dedupe_key=f"shipment-delivered-{shipment.pk}",
    )


@context_builder("shipment_delivered")
def shipment_delivered_context(*, order_id: int, shipment_id: int) -> dict:
    order = Order.objects.get(pk=order_id)
    shipment = Shipment.objects.defer("label_pdf").get(pk=shipment_id)
    deadline = withdrawal_deadline(order)
    return {
        **_base(order),
        "shipment": shipment,
        "delivered_at": timezone.localtime(shipment.delivered_at),
        "withdrawal_deadline": timezone.localtime(deadline) if deadline else None,
    }
