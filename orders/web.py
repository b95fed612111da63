"""Server-rendered pages reached from the order emails (no JavaScript needed)."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from orders import selectors
from orders.access import get_order_for
from orders.services.invoicing_pdf import invoice_pdf_response
from orders.services.lifecycle import establish_contact
from shop.errors import Refused


def _order(request: HttpRequest, number: str):
    token = request.GET.get("token") or request.POST.get("token")
    return get_order_for(number, user=request.user, token=token), token


@require_http_methods(["GET"])
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order, token = _order(request, number)
    return render(
        request,
        "orders/order_detail.html",
        {"order": order, "token": token, "summary": selectors.order_summary(order)},
    )


@require_http_methods(["GET", "POST"])
def confirm_order(request: HttpRequest, number: str) -> HttpResponse:
    """R12: a GET shows the button (link scanners must not confirm); the POST confirms."""
    order, token = _order(request, number)
    if request.method == "POST":
        try:
            establish_contact(order_id=order.pk)
        except Refused as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, _("Thank you: your order is confirmed."))
        return redirect(f"{reverse('orders-web:detail', args=[order.number])}?token={token}")
    return render(request, "orders/confirm.html", {"order": order, "token": token})


@require_http_methods(["GET"])
def invoice_pdf(request: HttpRequest, number: str) -> FileResponse:
    order, _token = _order(request, number)
    return invoice_pdf_response(order)
