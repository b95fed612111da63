"""Links in customer emails: purpose-scoped, expiring, revocable tokens for the order's
web pages (orders.web_access exchanges one for a session and redirects to a clean URL).

A link is not an API credential: `X-Order-Token` accepts only the order's access token,
returned once when the order is placed. Each link names its order, its purpose and the
order's `link_generation` (raising it revokes every link issued so far), and its lifetime
is fixed by its purpose when it is issued:

- `view` (order page, invoice, withdrawal receipt): ORDER_LINK_MAX_AGE;
- `confirm` (R12): until the contact deadline, at least ORDER_LINK_MIN_AGE;
- `withdraw` (R18, the withdrawal button): the whole withdrawal period once it is known
  (a link from the delivery email works until the deadline), otherwise ORDER_LINK_MAX_AGE;
  the order page reached by any later link shows the button too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from shop import tokens

ORDER_WEB_LINK = "order-web"
VIEW, CONFIRM, WITHDRAW = "view", "confirm", "withdraw"
PURPOSES = (VIEW, CONFIRM, WITHDRAW)


def _max_age() -> timedelta:
    return timedelta(seconds=settings.ORDER_LINK_MAX_AGE)


def link_expiry(order: Order, purpose: str, *, now: datetime | None = None) -> datetime:
    """When a link of `purpose` issued now stops working."""
    from orders.selectors import withdrawal_deadline

    now = now or timezone.now()
    floor = now + timedelta(seconds=settings.ORDER_LINK_MIN_AGE)
    if purpose == CONFIRM:
        return max(order.contact_deadline, floor)
    if purpose == WITHDRAW:
        deadline = withdrawal_deadline(order)
        if deadline is not None:
            # R18: the whole period, plus a day for the time zones of mail clients.
            return max(deadline + timedelta(days=1), floor)
    return now + _max_age()


def order_link_token(order: Order, purpose: str = VIEW) -> str:
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    value = {"n": order.number, "g": order.link_generation, "p": purpose}
    return tokens.sign_link(ORDER_WEB_LINK, value, expires_at=link_expiry(order, purpose))


def open_link(order: Order, token: str) -> dict | None:
    """The link's value (purpose "p", expiry "e" as a Unix time) when `token` is a valid,
    unexpired, unrevoked link to `order`."""
    try:
        value, expires = tokens.unsign_link(ORDER_WEB_LINK, token)
    except tokens.InvalidLink:
        return None
    if value.get("n") != order.number or value.get("g") != order.link_generation:
        return None
    if value.get("p") not in PURPOSES:
        return None
    return {**value, "e": expires}


def revoke_order_links(*, order_id: int) -> None:
    """Every link emailed so far stops working (and every page session it opened)."""
    with transaction.atomic():
        Order.objects.filter(pk=order_id).update(link_generation=F("link_generation") + 1)


def _url(name: str, order: Order, purpose: str, **kwargs) -> str:
    path = reverse(name, kwargs={"number": order.number, **kwargs})
    return f"{settings.SITE_URL}{path}?{urlencode({'token': order_link_token(order, purpose)})}"


def confirm_url(order: Order) -> str:
    return _url("orders-web:confirm", order, CONFIRM)


def order_url(order: Order) -> str:
    return _url("orders-web:detail", order, VIEW)


def invoice_url(order: Order) -> str:
    return _url("orders-web:invoice", order, VIEW)


def withdraw_url(order: Order) -> str:
    """R18: the withdrawal button of an order, for its emails."""
    return _url("withdrawals-web:start", order, WITHDRAW)


def receipt_url(order: Order, withdrawal_id: int) -> str:
    return _url("withdrawals-web:receipt", order, VIEW, pk=withdrawal_id)
