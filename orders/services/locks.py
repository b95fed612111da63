"""Lock querysets (after Saleor's lock_objects.py): rows are locked in a fixed order."""

from __future__ import annotations

from collections.abc import Iterable

from orders.models import Order
from shop.models import Product


def lock_order(order_id: int) -> Order:
    """Lock one order row for a read-modify-write of its money or state."""
    return Order.objects.select_for_update().get(pk=order_id)


def lock_order_by_number(number: str) -> Order:
    return Order.objects.select_for_update().get(number=number)


def lock_products_by_sku(skus: Iterable[str]) -> dict[str, Product]:
    """Lock products in SKU order, so concurrent checkouts never deadlock (R8)."""
    products = Product.objects.select_for_update().filter(sku__in=sorted(set(skus))).order_by("sku")
    return {p.sku: p for p in products}


def lock_products_by_id(ids: Iterable[int]) -> dict[int, Product]:
    products = Product.objects.select_for_update().filter(pk__in=sorted(set(ids))).order_by("sku")
    return {p.pk: p for p in products}
