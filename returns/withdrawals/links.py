"""Signed links to the withdrawal pages (the order's link token, see orders.links)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from orders.links import order_link_token


def _signed(path: str, number: str) -> str:
    return f"{settings.SITE_URL}{path}?{urlencode({'token': order_link_token(number)})}"


def withdraw_url(number: str) -> str:
    """R18: the withdrawal button of an order, for its emails."""
    return _signed(reverse("withdrawals-web:start", kwargs={"number": number}), number)


def receipt_url(number: str, withdrawal_id: int) -> str:
    path = reverse("withdrawals-web:receipt", kwargs={"number": number, "pk": withdrawal_id})
    return _signed(path, number)
