"""Who may see an order through the API: its owner's account or its access token
(`X-Order-Token`, returned once when the order is placed). Anyone else gets 404, never
another customer's data. Emailed links are not API credentials: they open the web pages
only (orders.web_access).

An unknown order number costs the same work as a known one with a wrong token (the token
is hashed and compared against a hash nothing matches), so the answer time tells nothing.
"""

from __future__ import annotations

from django.http import Http404

from orders.models import Order
from shop import tokens


def token_opens(order: Order, token: str | None) -> bool:
    if not token:
        return False
    return tokens.secret_matches(token, order.access_token_hash)


def can_access(order: Order, *, user, token: str | None) -> bool:
    if user is not None and user.is_authenticated and order.user_id == user.pk:
        return True
    return token_opens(order, token)


def get_order_for(number: str, *, user, token: str | None, queryset=None) -> Order:
    qs = queryset if queryset is not None else Order.objects.all()
    order = qs.filter(number=number).first()
    if order is None:
        tokens.burn_secret_check(token)
        raise Http404("No such order.")
    if not can_access(order, user=user, token=token):
        raise Http404("No such order.")
    return order
