"""Who may see an order: its owner's account, its access token (X-Order-Token), or a
signed link from one of its emails. Anyone else gets 404, never another customer's data."""

from __future__ import annotations

from django.http import Http404

from orders.links import ORDER_LINK
from orders.models import Order
from shop import tokens


def token_opens(order: Order, token: str | None) -> bool:
    if not token:
        return False
    if tokens.secret_matches(token, order.access_token_hash):
        return True
    try:
        return tokens.unsign(ORDER_LINK, token) == order.number
    except tokens.InvalidLink:
        return False


def can_access(order: Order, *, user, token: str | None) -> bool:
    if user is not None and user.is_authenticated and order.user_id == user.pk:
        return True
    return token_opens(order, token)


def get_order_for(number: str, *, user, token: str | None, queryset=None) -> Order:
    qs = queryset if queryset is not None else Order.objects.all()
    order = qs.filter(number=number).first()
    if order is None or not can_access(order, user=user, token=token):
        raise Http404("No such order.")
    return order
