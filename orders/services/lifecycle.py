"""Contact (R12), cancellation (T3.4, T5.4, R10, customer) and their money consequences."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from legal.services import ledger
from orders import emails
from orders.models import PRE_DISPATCH, CancelReason, LineStatus, Order, OrderLine, OrderStatus
from orders.services.locks import lock_order, lock_products_by_id
from orders.services.payments import settle_balance
from shop.errors import Refused
from shop.models import Product


def establish_contact(*, order_id: int, at: datetime | None = None) -> Order:
    """R12: the customer confirmed through the emailed link, or staff reached them."""
    at = at or timezone.now()
    with transaction.atomic():
        order = lock_order(order_id)
        if order.status == OrderStatus.CANCELLED:
            raise Refused(
                "order_cancelled",
                "The order is cancelled.",
                cancel_reason=order.cancel_reason,
            )
        if order.status == OrderStatus.PLACED:
            order.confirm(at=at)
            order.save()
        elif order.contact_established_at is None:
            order.contact_established_at = at
            order.save(update_fields=["contact_established_at"])
    return order


# --- Cancellation stops everything downstream (R14a, R14c) -----------------------------------

CancelCallback = Callable[[Order], None]
_cancel_callbacks: list[CancelCallback] = []


def on_order_cancelled(func: CancelCallback) -> CancelCallback:
    """Register a function called inside the cancellation's transaction (the order locked
    and already cancelled), e.g. delivery stopping the shipments not registered yet.
    Registered from an `AppConfig.ready()`; callbacks must be idempotent."""
    if func not in _cancel_callbacks:
        _cancel_callbacks.append(func)
    return func


def check_not_with_courier(order: Order, *, reason: str) -> None:
    """R14c: an order whose parcel is with the courier cannot be cancelled by anyone (the
    customer, staff, a deadline): it waits for delivery or for the parcel to come back.
    Only the courier's failed delivery through the customer's fault cancels it."""
    if order.status == OrderStatus.SHIPPED and reason != CancelReason.DELIVERY_FAILED:
        raise Refused(
            "parcel_with_courier",
            "The parcel is with the courier: the order can no longer be cancelled. It waits "
            "for delivery or for the parcel to come back; a consumer may withdraw instead.",
            status=order.status,
        )


def cancel_order(
    *, order_id: int, reason: str, at: datetime | None = None, update_ledger: bool = True
) -> Order:
    """Cancel, release the reserved stock, and refund per the reason. Idempotent.

    `update_ledger=False`: the caller recomputes the personal-data ledger itself, for many
    orders at once (the deadline jobs)."""
    at = at or timezone.now()
    with transaction.atomic():
        order = lock_order(order_id)
        if order.status == OrderStatus.CANCELLED:
            return order
        check_not_with_courier(order, reason=reason)
        order.cancel(reason=reason, at=at)
        order.save()
        for callback in list(_cancel_callbacks):
            callback(order)
        active = list(
            OrderLine.objects.filter(
                order=order, status__in=[LineStatus.ORDERED, LineStatus.UNAVAILABLE]
            )
        )
        release_stock(active)
        for line in active:
            line.cancel(at=at)
        # One UPDATE and one history INSERT for all lines (their rows change only under
        # the order lock held here, so the FSM's optimistic check adds nothing).
        bulk_update_with_history(active, OrderLine, ["status", "substitution_decided_at"])
        settle_balance(order=order, at=at)
        if update_ledger:
            ledger.recompute_ledger(order_ids=[order.pk])  # R26, R28: retention from now on
        emails.order_cancelled(order=order)
    return order


def cancel_by_customer(*, order_id: int) -> Order:
    """Before dispatch the customer may cancel; everything paid comes back, fee included."""
    with transaction.atomic():
        order = lock_order(order_id)
        check_not_with_courier(order, reason=CancelReason.CUSTOMER)
        if order.status not in PRE_DISPATCH:
            raise Refused(
                "cannot_cancel",
                "The order can no longer be cancelled: it has been dispatched or closed. "
                "A consumer may withdraw from the contract instead.",
                status=order.status,
            )
        return cancel_order(order_id=order.pk, reason="customer")


def release_stock(lines: list[OrderLine]) -> None:
    """R8: give reserved stock back, under product locks taken in SKU order."""
    if not lines:
        return
    products = lock_products_by_id(line.product_id for line in lines)
    for line in lines:
        # Units released earlier (a partial withdrawal before dispatch) are not reserved.
        products[line.product_id].stock += line.quantity - line.released_quantity
    Product.objects.bulk_update(list(products.values()), ["stock"])


def release_units(*, order_id: int, units: dict[int, int], at: datetime) -> None:
    """R16 (CRD Art 9(3)): the customer withdrew from `units` (line id -> quantity) before
    dispatch: they will not ship and their stock is released; a line withdrawn from in full
    is cancelled. The order is locked by the caller; the money is the withdrawal's."""
    lines = list(
        OrderLine.objects.select_for_update()
        .filter(order_id=order_id, pk__in=list(units), status=LineStatus.ORDERED)
        .order_by("pk")
    )
    if not lines:
        return
    products = lock_products_by_id(line.product_id for line in lines)
    for line in lines:
        quantity = min(units[line.pk], line.quantity - line.released_quantity)
        products[line.product_id].stock += quantity
        line.released_quantity += quantity
        if line.released_quantity >= line.quantity:
            line.cancel(at=at)
        line.save()
    Product.objects.bulk_update(list(products.values()), ["stock"])
