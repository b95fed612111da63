"""Reads of orders: what the customer and staff see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from delivery.rules import estimated_delivery
from orders import rules
from orders.models import Invoice, InvoiceKind, Order, OrderLine, Payment, Refund
from orders.services import account
from shop.calendar import riga_date
from shop.money import ZERO, to_money
from shop.selectors import latvian_calendar


@dataclass(frozen=True)
class OrderSummary:
    amount_paid: Decimal
    amount_refunded: Decimal
    amount_open: Decimal
    invoice: Invoice | None
    estimated_delivery: tuple[date, date] | None
    withdrawal_deadline: datetime | None


def order_with_details() -> QuerySet[Order]:
    """One query per relation, whatever the number of lines, payments or refunds."""
    return Order.objects.select_related("terms_version", "parcel_machine").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("pk")),
        Prefetch("payments", queryset=Payment.objects.order_by("received_at", "pk")),
        Prefetch(
            "refunds",
            queryset=Refund.objects.order_by("created_at", "pk").prefetch_related("allocations"),
        ),
        Prefetch("invoices", queryset=Invoice.objects.order_by("issued_at", "pk")),
    )


def with_placed_details(order: Order, *, lines: list[OrderLine], invoice: Invoice) -> Order:
    """The order checkout just placed, with what `order_with_details()` prefetches filled in
    from memory (no queries): its lines and invoice; a new order has no payments or refunds.

    Fills the prefetch cache the way Django's prefetch_related does."""
    related = {"lines": lines, "payments": [], "refunds": [], "invoices": [invoice]}
    order._prefetched_objects_cache = {}
    for name, rows in related.items():
        queryset = getattr(order, name).all()
        queryset._result_cache = list(rows)
        queryset._prefetch_done = True
        order._prefetched_objects_cache[name] = queryset
    return order


# R16: delivery tells whether goods of an order are still on their way (a parcel shipped
# after an earlier one delivered the order); registered from delivery's `ready()`.
GoodsCheck = Callable[[Order], bool]
_goods_on_their_way: list[GoodsCheck] = []


def on_goods_on_their_way(func: GoodsCheck) -> GoodsCheck:
    if func not in _goods_on_their_way:
        _goods_on_their_way.append(func)
    return func


def possession_time(order: Order) -> datetime | None:
    """R16 (CRD Art 9(2)(b)(ii)): when the customer took possession of all the goods: the
    delivery of the order's last outbound parcel (`Order.delivered_at`, kept by delivery);
    None before that, and while a parcel with more of its goods is still on its way."""
    if order.delivered_at is None:
        return None
    if any(check(order) for check in _goods_on_their_way):
        return None
    return order.delivered_at


def withdrawal_deadline(order: Order, calendar=None) -> datetime | None:
    """R16 (R0.4): the end of the withdrawal period, for consumers, from the delivery of
    the order's last outbound parcel (`orders.rules.withdrawal_deadline`, the one place).
    The API, the order pages, the delivery email and withdrawals ask it."""
    if not order.is_consumer or order.delivered_at is None:
        return None
    return rules.withdrawal_deadline(
        is_consumer=order.is_consumer,
        delivered_at=possession_time(order),
        calendar=calendar or latvian_calendar(),
    )


def order_summary(order: Order) -> OrderSummary:
    """Uses the prefetched relations of `order_with_details()` when present."""
    payments = list(order.payments.all())
    refunds = list(order.refunds.all())
    invoices = [i for i in order.invoices.all() if i.kind == InvoiceKind.INVOICE]
    paid = to_money(sum((p.amount for p in payments), ZERO))
    refunded = to_money(sum((r.amount for r in refunds if r.status != "failed"), ZERO))
    calendar = None
    estimate = None
    if order.paid_at and order.status in ("paid", "shipped"):
        calendar = latvian_calendar()
        estimate = estimated_delivery(paid_on=riga_date(order.paid_at), calendar=calendar)
    # R32: what the charges still owed lack (a dearer R13 substitute after payment too).
    open_amount = account.open_amount(order, order.lines.all(), paid, refunds)
    return OrderSummary(
        amount_paid=paid,
        amount_refunded=refunded,
        amount_open=open_amount,
        invoice=invoices[0] if invoices else None,
        estimated_delivery=estimate,
        withdrawal_deadline=withdrawal_deadline(order, calendar),
    )
