"""The invoice PDF (R9, T4.2, R0.1): orders.services.invoicing_pdf.

The PDF's text is read back with pypdf when it is installed, else with poppler's
`pdftotext`; without either the tests that read text are skipped with that reason.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.http import Http404

from orders import links
from orders.models import Invoice, InvoiceKind
from orders.services.checkout import DeliveryData
from orders.services.invoicing import issue_credit_note
from orders.services.invoicing_pdf import (
    VALID_WITHOUT_SIGNATURE,
    format_date,
    format_money,
    format_rate,
    invoice_attachment,
    invoice_pdf_response,
    render_invoice_pdf,
)
from shop.money import FloatMoneyError
from tests.factories import ProductFactory, place_test_order

PLACED_AT = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday; 12:00 in Riga
COURIER = DeliveryData(
    method="omniva_courier", street="Brīvības iela 12-3", city="Rīga", postal_code="LV-1010"
)


def pdf_text(data: bytes) -> str:
    """The PDF's text with its layout kept: a table row stays on one line."""
    try:
        from pypdf import PdfReader
    except ImportError:
        PdfReader = None
    if PdfReader is not None:
        reader = PdfReader(io.BytesIO(data))
        return "\n\f".join(page.extract_text(extraction_mode="layout") for page in reader.pages)
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("reading the PDF's text needs pypdf or pdftotext (apt: poppler-utils)")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as pdf:
        pdf.write(data)
        pdf.flush()
        result = subprocess.run(
            [pdftotext, "-layout", "-enc", "UTF-8", pdf.name, "-"],
            capture_output=True,
            check=True,
            timeout=60,
        )
    return result.stdout.decode("utf-8")


def flat(text: str) -> str:
    return " ".join(text.split())


def has_row(text: str, *cells: str) -> bool:
    """The cells appear in this order on one line (a row of a table)."""
    pattern = r"[ \t]+".join(re.escape(cell) for cell in cells)
    return re.search(pattern, text) is not None


def place_mixed_rate_order(**kwargs):
    """2 x 12.10 at 21% and 1 x 30.00 at 12%: goods 54.20, so delivery is free (R6)."""
    ProductFactory(sku="KEU-STD", name_lv="Matu šampūns", price=Decimal("12.10"))
    ProductFactory(
        sku="KEU-RED", name_lv="Ķirbju eļļa", price=Decimal("30.00"), vat_category="reduced"
    )
    with time_machine.travel(PLACED_AT, tick=False):
        return place_test_order([("KEU-STD", 2), ("KEU-RED", 1)], delivery=COURIER, **kwargs)


# --- Formatting ---------------------------------------------------------------------------


def test_r0_1_amounts_print_with_two_decimals_and_eur():
    assert format_money(Decimal("4.2")) == "4.20 EUR"
    assert format_money("1234.5") == "1234.50 EUR"
    assert format_money(Decimal("-10.005")) == "-10.01 EUR"  # half-up, away from zero
    with pytest.raises(FloatMoneyError):
        format_money(4.2)


def test_r9_rates_and_dates_print_the_latvian_way():
    assert format_rate(Decimal("21.00")) == "21%"
    assert format_rate("12.00") == "12%"
    assert format_rate("5.50") == "5.5%"
    assert format_rate("0.00") == "0%"
    assert format_date(date(2026, 3, 1)) == "01.03.2026"
    assert format_date(None) == ""


# --- The document ---------------------------------------------------------------------


@pytest.mark.django_db
def test_r9_invoice_pdf_has_every_field_latvian_vat_law_asks():
    """R9 (T4.2): seller name, reg. and VAT numbers, address; buyer name and address;
    issue date; number; lines with quantity, unit price, VAT rate, total; taxable amount
    and VAT per rate; total; due date, IBAN/BIC and payment reference; order number."""
    placed = place_mixed_rate_order()
    invoice = placed.order.invoices.get()
    data = render_invoice_pdf(invoice)

    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    words = flat(text)
    seller = settings.SHOP
    assert "Rēķins / Invoice" in words
    assert invoice.number in words
    assert invoice.number.startswith("KEU-2026-")
    # Seller, from the invoice's snapshot.
    assert "PĀRDEVĒJS / SELLER" in words
    assert seller["SELLER_NAME"] in words
    assert f"Reģ. Nr. / Reg. No.: {seller['SELLER_REG_NO']}" in words
    assert f"PVN Nr. / VAT No.: {seller['SELLER_VAT_NO']}" in words
    assert seller["SELLER_ADDRESS"] in words
    # Buyer.
    assert "PIRCĒJS / BUYER" in words
    assert "Anna Bērziņa" in words
    assert "Brīvības iela 12-3, Rīga, LV-1010" in words
    # Dates, dd.mm.yyyy: issued on the day of placement, due 5 working days later (R10).
    assert invoice.issue_date == date(2026, 3, 10)
    assert invoice.due_date == date(2026, 3, 17)
    assert "Datums / Issue date" in words
    assert "10.03.2026" in words
    assert "Apmaksāt līdz / Due date" in words
    assert "17.03.2026" in words
    # Lines: quantity, unit price incl. VAT, VAT rate, line total.
    assert has_row(text, "KEU-STD", "Matu šampūns", "2", "12.10 EUR", "21%", "24.20 EUR")
    assert has_row(text, "KEU-RED", "Ķirbju eļļa", "1", "30.00 EUR", "12%", "30.00 EUR")
    # Taxable amount and VAT per rate, and the totals.
    assert has_row(text, "21%", "20.00 EUR", "4.20 EUR", "24.20 EUR")
    assert has_row(text, "12%", "26.79 EUR", "3.21 EUR", "30.00 EUR")
    assert "46.79 EUR" in words  # total excl. VAT
    assert "7.41 EUR" in words  # total VAT
    assert "Kopā apmaksai / Total due" in words
    assert "54.20 EUR" in words
    # Payment: the shop's account and the invoice number as the payment reference.
    assert seller["SELLER_IBAN"] in words.replace(" ", "")
    assert seller["SELLER_BIC"] in words
    assert has_row(text, "Maksājuma mērķis / Payment reference", invoice.number)
    assert invoice.payment_reference == invoice.number
    assert "Pasūtījums / Order No." in words
    assert placed.order.number in words
    # T4.2: electronic, valid without signature.
    assert VALID_WITHOUT_SIGNATURE in words


@pytest.mark.django_db
def test_r0_1_vat_inside_24_20_at_21_percent_is_4_20_on_the_invoice():
    """R0.1: VAT of a gross amount is gross - gross / (1 + rate), rounded per rate."""
    placed = place_mixed_rate_order()
    invoice = placed.order.invoices.get()

    assert invoice.vat_breakdown == [
        {"rate": "21.00", "taxable": "20.00", "vat": "4.20", "gross": "24.20"},
        {"rate": "12.00", "taxable": "26.79", "vat": "3.21", "gross": "30.00"},
    ]
    assert invoice.total == Decimal("54.20")
    assert not any(line.sku == "" for line in invoice.lines.all())  # above 50.00: free
    assert has_row(pdf_text(render_invoice_pdf(invoice)), "21%", "20.00 EUR", "4.20 EUR")


@pytest.mark.django_db
def test_r9_r6_delivery_fee_is_a_line_of_the_invoice_at_the_goods_rate():
    ProductFactory(sku="KEU-001", name_lv="Matu maska", price=Decimal("24.20"))
    with time_machine.travel(PLACED_AT, tick=False):
        placed = place_test_order([("KEU-001", 1)])
    invoice = placed.order.invoices.get()
    text = pdf_text(render_invoice_pdf(invoice))

    assert has_row(text, "KEU-001", "Matu maska", "1", "24.20 EUR", "21%", "24.20 EUR")
    assert has_row(text, "Piegāde / Delivery", "1", "2.00 EUR", "21%", "2.00 EUR")
    # The fee is taxed with the goods: 26.20 gross at 21% holds 4.55 VAT.
    assert has_row(text, "21%", "21.65 EUR", "4.55 EUR", "26.20 EUR")
    assert "26.20 EUR" in flat(text)
    assert invoice.total == Decimal("26.20")


@pytest.mark.django_db
def test_r9_latvian_letters_survive_in_the_pdf():
    """fpdf2's core fonts cannot print ā č ē ģ ī ķ ļ ņ š ū ž: the vendored DejaVu Sans can."""
    letters = "ĀČĒĢĪĶĻŅŠŪŽ āčēģīķļņšūž"
    ProductFactory(sku="KEU-LV", name_lv=f"Ziepes {letters}", price=Decimal("3.00"))
    placed = place_test_order(
        [("KEU-LV", 1)], customer={"first_name": "Anna", "last_name": "Bērziņa"}
    )
    data = render_invoice_pdf(placed.order.invoices.get())
    words = flat(pdf_text(data))

    assert "Anna Bērziņa" in words
    assert letters in words
    assert "Rīga Origo Omniva pakomāts" in words  # the parcel machine is the buyer's address
    assert b"DejaVuSans" in data  # the font is embedded, nothing comes from the host
    assert b"Helvetica" not in data


@pytest.mark.django_db
def test_r9_business_buyer_gets_its_registration_number_on_the_invoice():
    placed = place_mixed_rate_order(
        customer={
            "is_consumer": False,
            "company_name": "SIA Ābele",
            "company_reg_no": "40003123456",
        }
    )
    words = flat(pdf_text(render_invoice_pdf(placed.order.invoices.get())))

    assert "SIA Ābele (Anna Bērziņa)" in words
    assert "Reģ. Nr. / Reg. No.: 40003123456" in words


@pytest.mark.django_db
def test_r9_credit_note_is_titled_as_one_and_names_the_invoice_it_corrects():
    placed = place_mixed_rate_order()
    invoice = placed.order.invoices.get()
    with time_machine.travel(datetime(2026, 3, 20, 9, 0, tzinfo=UTC), tick=False):
        credit = issue_credit_note(
            order=placed.order,
            corrects=invoice,
            rows=[("Matu šampūns", "KEU-STD", -1, Decimal("12.10"), Decimal("21.00"))],
        )
    text = pdf_text(render_invoice_pdf(credit))
    words = flat(text)

    assert credit.kind == InvoiceKind.CREDIT_NOTE
    assert "Kredītrēķins / Credit note" in words
    assert credit.number in words
    assert "Koriģē rēķinu / Corrects" in words
    assert invoice.number in words
    assert "20.03.2026" in words
    assert has_row(text, "KEU-STD", "Matu šampūns", "-1", "12.10 EUR", "21%", "-12.10 EUR")
    assert has_row(text, "21%", "-10.00 EUR", "-2.10 EUR", "-12.10 EUR")
    assert "Payment details" not in words  # nothing to pay on a credit note
    assert VALID_WITHOUT_SIGNATURE in words
    # The order's invoice stays the invoice, not the later credit note.
    response = invoice_pdf_response(placed.order)
    assert response["Content-Disposition"] == f'inline; filename="{invoice.number}.pdf"'


@pytest.mark.django_db
def test_r9_long_invoice_runs_over_pages_with_the_statement_on_each():
    skus = [f"KEU-{n:03d}" for n in range(60)]
    for sku in skus:
        ProductFactory(sku=sku, name_lv=f"Produkts {sku}", price=Decimal("1.00"))
    placed = place_test_order([(sku, 1) for sku in skus])
    text = pdf_text(render_invoice_pdf(placed.order.invoices.get()))
    pages = [page for page in text.split("\f") if page.strip()]

    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert VALID_WITHOUT_SIGNATURE in flat(page)
        assert f"Lapa / Page {number}/{len(pages)}" in flat(page)
    for sku in skus:
        assert has_row(text, sku, f"Produkts {sku}", "1", "1.00 EUR", "21%", "1.00 EUR")
    assert "60.00 EUR" in flat(text)


@pytest.mark.django_db
def test_r9_pdf_is_deterministic_and_dated_when_the_invoice_was_issued():
    placed = place_mixed_rate_order()
    invoice = placed.order.invoices.get()

    first = render_invoice_pdf(invoice)
    again = render_invoice_pdf(Invoice.objects.get(pk=invoice.pk))
    assert first == again
    assert b"/CreationDate (D:20260310100000Z" in first


# --- Delivery: web page and email -------------------------------------------------------


@pytest.mark.django_db
def test_r9_invoice_pdf_response_is_the_orders_invoice_inline():
    placed = place_mixed_rate_order()
    invoice = placed.order.invoices.get()

    response = invoice_pdf_response(placed.order)
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="{invoice.number}.pdf"'
    assert b"".join(response.streaming_content).startswith(b"%PDF-")

    Invoice.objects.filter(order=placed.order).delete()
    with pytest.raises(Http404):
        invoice_pdf_response(placed.order)


@pytest.mark.django_db
def test_r9_web_invoice_pdf_opens_with_the_access_token(client):
    placed = place_mixed_rate_order()
    invoice = placed.order.invoices.get()

    response = client.get(
        f"/orders/{placed.order.number}/invoice.pdf", {"token": placed.access_token}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain == [(f"/orders/{placed.order.number}/invoice.pdf", 303)]
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="{invoice.number}.pdf"'
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF-")
    assert invoice.number in flat(pdf_text(body))


@pytest.mark.django_db
def test_r9_web_invoice_pdf_opens_from_the_emailed_link(client):
    placed = place_mixed_rate_order()
    url = links.invoice_url(placed.order).removeprefix(settings.SITE_URL)

    response = client.get(url, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(url.split("?")[0], 303)]  # the token is gone
    assert response["Content-Type"] == "application/pdf"


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_r9_web_invoice_pdf_is_404_without_the_right_token(client, token):
    placed = place_mixed_rate_order()
    other = place_test_order([("KEU-STD", 1)])

    url = f"/orders/{placed.order.number}/invoice.pdf"
    assert client.get(url, {"token": token}).status_code == 404
    # Another order's token opens only that order.
    assert client.get(url, {"token": other.access_token}).status_code == 404
    assert client.get("/orders/NOSUCH00/invoice.pdf", {"token": token}).status_code == 404


@pytest.mark.django_db
def test_r9_invoice_pdf_is_attached_to_the_order_email(django_capture_on_commit_callbacks):
    """R9: issued and emailed (PDF attached) when the order is placed."""
    with django_capture_on_commit_callbacks(execute=True):
        placed = place_mixed_rate_order()
    invoice = placed.order.invoices.get()

    assert len(mail.outbox) == 1
    [(filename, content, mimetype)] = mail.outbox[0].attachments
    assert filename == f"{invoice.number}.pdf"
    assert mimetype == "application/pdf"
    assert content.startswith(b"%PDF-")
    assert invoice_attachment(invoice.pk) == (filename, content, mimetype)
