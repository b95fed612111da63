"""Links in customer emails: each carries a signed, expiring token for its order
(accepted like the order's access token, see orders.access)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from shop import tokens

ORDER_LINK = "order"


def order_link_token(number: str) -> str:
    return tokens.sign(ORDER_LINK, number)


def _url(name: str, number: str) -> str:
    path = reverse(name, kwargs={"number": number})
    return f"{settings.SITE_URL}{path}?{urlencode({'token': order_link_token(number)})}"


def confirm_url(number: str) -> str:
    return _url("orders-web:confirm", number)


def order_url(number: str) -> str:
    return _url("orders-web:detail", number)


def invoice_url(number: str) -> str:
    return _url("orders-web:invoice", number)
