"""Invoice PDF (R9). Being written: see the helper task."""

from __future__ import annotations

from django.http import FileResponse

from orders.models import Invoice, Order
from shop.mail import attachment_builder


def render_invoice_pdf(invoice: Invoice) -> bytes:
    raise NotImplementedError


def invoice_pdf_response(order: Order) -> FileResponse:
    raise NotImplementedError


@attachment_builder("invoice_pdf")
def invoice_attachment(invoice_id: int) -> tuple[str, bytes, str]:
    invoice = Invoice.objects.select_related("order").get(pk=invoice_id)
    return f"{invoice.number}.pdf", render_invoice_pdf(invoice), "application/pdf"
