"""Server-rendered pages reached from the order emails (no JavaScript needed).

An emailed link is exchanged for a page session and a redirect to the clean URL
(orders.web_access); the pages carry no token in their links or forms."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from orders import selectors
from orders.services.invoicing_pdf import invoice_pdf_response
from orders.services.lifecycle import establish_contact
from orders.web_access import open_order_page
from shop.errors import Refused


@require_http_methods(["GET"])
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order, exchanged = open_order_page(request, number)
    if exchanged is not None:
        return exchanged
    return render(
        request,
        "orders/order_detail.html",
        {"order": order, "summary": selectors.order_summary(order)},
    )


@require_http_methods(["GET", "POST"])
def confirm_order(request: HttpRequest, number: str) -> HttpResponse:
    """R12: a GET shows the button (link scanners must not confirm); the POST confirms."""
    order, exchanged = open_order_page(request, number)
    if exchanged is not None:
        return exchanged
    if request.method == "POST":
        try:
            establish_contact(order_id=order.pk)
        except Refused as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, _("Thank you: your order is confirmed."))
        return redirect(reverse("orders-web:detail", args=[order.number]))
    return render(request, "orders/confirm.html", {"order": order})


@require_http_methods(["GET"])
def invoice_pdf(request: HttpRequest, number: str) -> HttpResponse:
    order, exchanged = open_order_page(request, number)
    if exchanged is not None:
        return exchanged
    return invoice_pdf_response(order)
