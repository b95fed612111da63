"""Customer emails of the orders app, queued through the outbox (sent after commit)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from orders import links
from orders.models import Invoice, Order, OrderLine, Payment
from shop.mail import context_builder, queue_email


def _base(order: Order) -> dict:
    return {
        "order": order,
        "shop": settings.SHOP,
        "order_url": links.order_url(order),
        "site_url": settings.SITE_URL,
    }


def order_placed(*, order: Order, invoice: Invoice) -> None:
    """R9, R12, CRD Art 6: confirmation, invoice PDF, confirm link, withdrawal information.

    Rendered when sent (after commit): the checkout pays one INSERT for it."""
    queue_email(
        to=order.email,
        template="order_placed",
        refs={"order_id": order.pk, "invoice_id": invoice.pk},
        attachments=[("invoice_pdf", invoice.pk)],
        dedupe_key=f"order-placed-{order.pk}",
    )


@context_builder("order_placed")
def order_placed_context(*, order_id: int, invoice_id: int) -> dict:
    order = Order.objects.get(pk=order_id)
    return {
        **_base(order),
        "lines": list(OrderLine.objects.filter(order_id=order_id).order_by("pk")),
        "invoice": Invoice.objects.get(pk=invoice_id),
        "confirm_url": links.confirm_url(order),
        "invoice_url": links.invoice_url(order),
        "contact_deadline": timezone.localtime(order.contact_deadline),
    }


def payment_received(*, order: Order, payment: Payment) -> None:
    queue_email(
        to=order.email,
        template="payment_received",
        context={**_base(order), "payment": payment},
    )


def order_cancelled(*, order: Order) -> None:
    queue_email(
        to=order.email,
        template="order_cancelled",
        context=_base(order),
        dedupe_key=f"order-cancelled-{order.pk}",
    )


def substitution_offered(*, order: Order, line: OrderLine) -> None:
    queue_email(
        to=order.email,
        template="substitution_offered",
        context={**_base(order), "line": line},
    )
