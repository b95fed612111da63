"""R13 (T3.5): unavailable goods.

Staff mark a line unavailable and offer a similar product. The customer accepts (the line
is replaced at the substitute's current price; the difference is invoiced or refunded)
or declines (the line is cancelled and its amount refunded within 14 calendar days of the
decline). If no goods remain, the order is cancelled and everything, delivery fee
included, is refunded. The delivery fee never changes because of a substitution.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from delivery.rules import delivery_fee
from orders import emails
from orders.calculations import EXCESS, Target
from orders.models import (
    InvoiceKind,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    RefundReason,
)
from orders.services import account, refunds
from orders.services.invoicing import issue_credit_note, issue_invoice_correction
from orders.services.lifecycle import cancel_order, release_stock
from orders.services.locks import lock_order, lock_products_by_id
from shop.calendar import riga_date
from shop.errors import Refused
from shop.models import Product
from shop.money import line_total, to_money
from shop.selectors import vat_rates_in_force

SUBSTITUTABLE = [OrderStatus.PLACED, OrderStatus.CONFIRMED, OrderStatus.PAID]
DECLINE_REFUND_DAYS = 14


def mark_line_unavailable(
    *, line_id: int, substitute_sku: str | None, at: datetime | None = None
) -> OrderLine:
    """Staff: the line cannot be delivered; offer `substitute_sku` (or none)."""
    at = at or timezone.now()
    with transaction.atomic():
        line = OrderLine.objects.select_related("order").get(pk=line_id)
        order = lock_order(line.order_id)
        line = OrderLine.objects.select_for_update().get(pk=line_id)
        if order.status not in SUBSTITUTABLE:
            raise Refused(
                "order_not_open",
                "Only an order not yet dispatched can change.",
                status=order.status,
            )
        substitute = None
        if substitute_sku:
            substitute = Product.objects.filter(sku=substitute_sku, active=True).first()
            if substitute is None or substitute.pk == line.product_id:
                raise Refused("invalid_substitute", "Choose another active product as substitute.")
        if line.status != LineStatus.ORDERED:
            raise Refused("line_not_open", "This line is not open.", status=line.status)
        line.mark_unavailable(substitute=substitute, at=at)
        line.save()
        emails.substitution_offered(order=order, line=line)
    if substitute is None:
        return decide_substitution(order_id=line.order_id, line_id=line.pk, accept=False, at=at)
    return line


def decide_substitution(
    *, order_id: int, line_id: int, accept: bool, at: datetime | None = None
) -> OrderLine:
    """The customer accepts or declines the substitute offered for a line."""
    at = at or timezone.now()
    with transaction.atomic():
        order = lock_order(order_id)
        line = OrderLine.objects.select_for_update().filter(pk=line_id, order=order).first()
        if line is None:
            from django.http import Http404

            raise Http404("No such line.")
        if line.status != LineStatus.UNAVAILABLE:
            raise Refused(
                "no_substitution_pending",
                "No substitute is waiting for a decision on this line.",
                status=line.status,
            )
        if order.status not in SUBSTITUTABLE:
            raise Refused("order_not_open", "The order can no longer change.", status=order.status)
        if accept and line.substitute_product_id:
            return _accept(order, line, at)
        return _decline(order, line, at)


def _accept(order: Order, line: OrderLine, at: datetime) -> OrderLine:
    products = lock_products_by_id([line.product_id, line.substitute_product_id])
    substitute = products[line.substitute_product_id]
    if substitute.stock < line.quantity:
        raise Refused(
            "insufficient_stock",
            "The substitute is no longer in stock.",
            short=[
                {"sku": substitute.sku, "requested": line.quantity, "available": substitute.stock}
            ],
        )
    rate = vat_rates_in_force(riga_date(at)).get(substitute.vat_category, line.vat_rate)
    new_line = OrderLine.objects.create(
        order=order,
        product=substitute,
        sku=substitute.sku,
        name_lv=substitute.name_lv,
        name_en=substitute.name_en,
        unit_price=substitute.price,
        vat_rate=rate,
        quantity=line.quantity,
        line_total=line_total(substitute.price, line.quantity),
        sealed_hygiene=substitute.sealed_hygiene,
        replaces=line,
    )
    line.accept_substitute(at=at)
    line.save()
    products[line.product_id].stock += line.quantity
    substitute.stock -= line.quantity
    Product.objects.bulk_update(list(products.values()), ["stock"])

    difference = new_line.line_total - line.line_total
    _change_goods_total(order, difference)
    original = order.invoices.filter(kind=InvoiceKind.INVOICE).order_by("pk").first()
    rows = [
        (line.name_lv, line.sku, -line.quantity, line.unit_price, line.vat_rate),
        (new_line.name_lv, new_line.sku, new_line.quantity, new_line.unit_price, new_line.vat_rate),
    ]
    if difference > 0:
        issue_invoice_correction(order=order, corrects=original, rows=rows)
    elif difference < 0:
        issue_credit_note(order=order, corrects=original, rows=rows)
        _refund_if_paid(order, EXCESS, at)
    return new_line


def _decline(order: Order, line: OrderLine, at: datetime) -> OrderLine:
    line.cancel(at=at)
    line.save()
    release_stock([line])
    _change_goods_total(order, -line.line_total)
    original = order.invoices.filter(kind=InvoiceKind.INVOICE).order_by("pk").first()
    issue_credit_note(
        order=order,
        corrects=original,
        rows=[(line.name_lv, line.sku, -line.quantity, line.unit_price, line.vat_rate)],
    )
    remaining = order.lines.filter(status__in=[LineStatus.ORDERED, LineStatus.UNAVAILABLE])
    if not remaining.exists():
        # No goods remain: cancel; everything paid, delivery fee included, comes back.
        cancel_order(order_id=order.pk, reason="unavailable", at=at)
        return line
    _refund_if_paid(order, line.pk, at)
    return line


def _change_goods_total(order: Order, difference) -> None:
    """R13 with R6: the goods total moves by `difference`; the fee is judged again against
    the threshold of the order's own tariff, and only ever lowered: a customer never pays
    more for delivery because the shop could not supply what was ordered."""
    order.goods_total = to_money(order.goods_total + difference)
    tariff = order.tariff
    fee = delivery_fee(goods_total=order.goods_total, fee=tariff.fee, free_above=tariff.free_above)
    order.delivery_fee = min(order.delivery_fee, fee)
    order.total = order.goods_total + order.delivery_fee
    order.save(update_fields=["goods_total", "delivery_fee", "total"])


def _refund_if_paid(order: Order, target: Target, at: datetime) -> None:
    """R13 with R32: give back what the order's account holds for `target` (a declined
    line, or EXCESS: the part of the payment a cheaper substitute no longer needs)."""
    money = account.money_account(order)
    amount = money.refundable(target)
    if amount > 0:
        refunds.create_refund(
            order_id=order.pk,
            take={target: amount},
            reason=RefundReason.UNAVAILABLE,
            due_date=riga_date(at) + timedelta(days=DECLINE_REFUND_DAYS),
        )
