"""Who may open an order's web pages (the order page, the invoice, the withdrawal button):
the owner's account, or a browser session opened by an emailed link.

An emailed link (`?token=`, orders.links) is exchanged once for a session grant: the
page validates the token, stores the grant in the session and answers 303 to the same
URL without the token, so the token is not kept in the browser's history, is not sent on
as a Referer, and never appears in a `Location` header; the pages after it carry no token
in their forms or links. Everything works without JavaScript (R18). The grant lasts at
most ORDER_LINK_SESSION_MAX_AGE and as long as the link, and it ends when the order's
links are revoked (orders.links.revoke_order_links). The order's access token (the API
secret) opens a session the same way.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone

from orders import links
from orders.access import token_opens
from orders.models import Order
from shop import tokens

SESSION_KEY = "order_links"
MAX_GRANTS = 20


class _SeeOther(HttpResponseRedirect):
    status_code = 303


def _grants(request: HttpRequest) -> dict:
    grants = request.session.get(SESSION_KEY)
    return grants if isinstance(grants, dict) else {}


def _grant(request: HttpRequest, order: Order, *, expires: float) -> None:
    now = timezone.now().timestamp()
    grants = {k: v for k, v in _grants(request).items() if v.get("e", 0) > now}
    if len(grants) >= MAX_GRANTS:
        grants.pop(min(grants, key=lambda k: grants[k].get("e", 0)))
    grants[order.number] = {"g": order.link_generation, "e": int(expires)}
    # A new session key on every grant: a session id planted before the link was
    # opened does not inherit the order (session fixation).
    request.session.cycle_key()
    request.session[SESSION_KEY] = grants


def _has_grant(request: HttpRequest, order: Order) -> bool:
    grant = _grants(request).get(order.number)
    if not isinstance(grant, dict):
        return False
    return grant.get("g") == order.link_generation and timezone.now().timestamp() <= grant.get(
        "e", 0
    )


def _clean_url(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("token", None)
    rest = urlencode(list(query.lists()), doseq=True)
    return f"{request.path}?{rest}" if rest else request.path


def open_order_page(request: HttpRequest, number: str) -> tuple[Order | None, HttpResponse | None]:
    """(order, None) when the visitor may see the order's pages; (None, 303 to the clean
    URL) after a valid link was exchanged for a session; Http404 otherwise."""
    order = Order.objects.filter(number=number).first()
    token = request.GET.get("token") if request.method in ("GET", "HEAD") else None
    if order is None:
        # The same work as a known order with a wrong token: no timing oracle.
        if token:
            links.open_link(Order(number=number), token)
        tokens.burn_secret_check(token)
        raise Http404("No such order.")
    if token:
        now = timezone.now().timestamp()
        cap = now + settings.ORDER_LINK_SESSION_MAX_AGE
        value = links.open_link(order, token)
        if value is not None:
            _grant(request, order, expires=min(cap, value["e"]))
            return None, _SeeOther(_clean_url(request))
        if token_opens(order, token):
            _grant(request, order, expires=cap)
            return None, _SeeOther(_clean_url(request))
        raise Http404("No such order.")
    user = request.user
    if user.is_authenticated and order.user_id == user.pk:
        return order, None
    if _has_grant(request, order):
        return order, None
    raise Http404("No such order.")
