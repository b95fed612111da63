"""Invoice PDF (R9, T4.2): an electronic invoice, valid without signature.

Rendered with fpdf2 and the vendored DejaVu Sans (`orders/fonts/`, Bitstream Vera and
Arev licence): fpdf2's core fonts cover only Latin-1 and cannot print ā č ē ģ ī ķ ļ ņ š
ū ž, and the host's fonts are never used. Labels are Latvian with the English beside
them. Everything printed comes from the invoice row and its snapshot of the parties, so
a reprint years later shows what was issued. The PDF's creation date is the invoice's
issue time, so the same invoice always renders to the same bytes.
"""

from __future__ import annotations

import io
import logging
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout, TableCellFillMode, XPos, YPos

from orders.models import Invoice, InvoiceKind, Order
from shop.mail import attachment_builder
from shop.money import ZERO, to_money

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
FONT = "DejaVuSans"

# fontTools logs every table it subsets at INFO, on every render: keep its warnings only.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)

VALID_WITHOUT_SIGNATURE = (
    "Rēķins sagatavots elektroniski un ir derīgs bez paraksta / "
    "Electronic invoice, valid without signature"
)
TITLES = {
    InvoiceKind.INVOICE: "Rēķins / Invoice",
    InvoiceKind.CREDIT_NOTE: "Kredītrēķins / Credit note",
}

# Colours (RGB) and geometry (mm, A4 portrait).
INK = (33, 37, 41)
MUTED = (108, 117, 125)
ACCENT = (24, 62, 110)
RULE = (190, 197, 206)
SHADE = (236, 241, 247)
STRIPE = (248, 249, 251)
MARGIN = 15
PAGE_WIDTH = 210
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
FOOTER_HEIGHT = 22
FACTS_WIDTH = 80  # issue date, due date, order number: top right
TITLE_WIDTH = CONTENT_WIDTH - FACTS_WIDTH - 4


# --- Formatting: pure -------------------------------------------------------------------


def format_money(amount: Decimal | str) -> str:
    """R0.1: two decimals and the currency, from a Decimal (or its string), never a float."""
    return f"{to_money(amount):.2f} EUR"


def format_rate(rate: Decimal | str) -> str:
    """Decimal("21.00") -> "21%", Decimal("5.50") -> "5.5%"."""
    text = f"{Decimal(str(rate)):.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def format_date(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else ""


# --- Rendering --------------------------------------------------------------------------


class _InvoiceDocument(FPDF):
    """A4 page with the T4.2 statement and page numbers in the footer of every page."""

    def __init__(self, *, footer_left: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_left = footer_left
        self.add_font(FONT, "", FONT_DIR / "DejaVuSans.ttf")
        self.add_font(FONT, "B", FONT_DIR / "DejaVuSans-Bold.ttf")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=FOOTER_HEIGHT + 6)
        self.set_text_color(*INK)
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)

    def footer(self) -> None:
        self.set_y(-FOOTER_HEIGHT)
        self.set_draw_color(*RULE)
        self.line(MARGIN, self.get_y(), PAGE_WIDTH - MARGIN, self.get_y())
        self.ln(2.5)
        self.set_font(FONT, "B", 8)
        self.set_text_color(*INK)
        self.cell(CONTENT_WIDTH, 4, VALID_WITHOUT_SIGNATURE, align="C", new_x=XPos.LMARGIN)
        self.ln(5)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.cell(CONTENT_WIDTH / 2, 4, self.footer_left, align="L")
        self.cell(CONTENT_WIDTH / 2, 4, f"Lapa / Page {self.page_no()}/{{nb}}", align="R")
        self.set_text_color(*INK)


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """R9: the invoice (or credit note) as an A4 PDF with every field Latvian VAT law asks."""
    seller = invoice.seller or {}
    title = TITLES.get(invoice.kind, TITLES[InvoiceKind.INVOICE])
    pdf = _InvoiceDocument(footer_left=f"{seller.get('name', '')} · {invoice.number}")
    pdf.set_creation_date(invoice.issued_at)
    pdf.set_title(f"{title} {invoice.number}")
    pdf.set_author(seller.get("name", ""))
    pdf.set_subject(VALID_WITHOUT_SIGNATURE)
    pdf.set_lang("lv")
    pdf.add_page()

    _heading(pdf, invoice, title)
    _parties(pdf, invoice, seller)
    _lines(pdf, invoice)
    _summary(pdf, invoice)
    if invoice.kind == InvoiceKind.INVOICE:
        _payment_details(pdf, invoice, seller)
    return bytes(pdf.output())


def _label(pdf: FPDF, text: str) -> None:
    """A small upper-case section label in the accent colour."""
    pdf.set_font(FONT, "B", 7.5)
    pdf.set_text_color(*ACCENT)
    pdf.cell(0, 4.5, text.upper(), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*INK)


def _heading(pdf: FPDF, invoice: Invoice, title: str) -> None:
    top = pdf.get_y()
    size = 20
    pdf.set_font(FONT, "B", size)
    while pdf.get_string_width(title) > TITLE_WIDTH and size > 12:
        size -= 1
        pdf.set_font(FONT, "B", size)
    pdf.set_text_color(*ACCENT)
    pdf.cell(TITLE_WIDTH, 10, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(TITLE_WIDTH, 7, f"Nr. / No. {invoice.number}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()

    facts = [("Datums / Issue date", format_date(invoice.issue_date))]
    if invoice.kind == InvoiceKind.INVOICE:
        facts.append(("Apmaksāt līdz / Due date", format_date(invoice.due_date)))
    facts.append(("Pasūtījums / Order No.", invoice.order.number))
    if invoice.corrects_id:
        facts.append(("Koriģē rēķinu / Corrects", invoice.corrects.number))
    pdf.set_y(top + 1)
    for label, value in facts:
        pdf.set_x(PAGE_WIDTH - MARGIN - FACTS_WIDTH)
        pdf.set_font(FONT, "", 9)
        pdf.set_text_color(*MUTED)
        pdf.cell(42, 5.5, label)
        pdf.set_font(FONT, "B", 9)
        pdf.set_text_color(*INK)
        pdf.cell(FACTS_WIDTH - 42, 5.5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)


def _party(pdf: FPDF, x: float, width: float, label: str, name: str, rows: list[str]) -> float:
    """One party block at x; returns the y where it ends."""
    pdf.set_x(x)
    pdf.set_font(FONT, "B", 7.5)
    pdf.set_text_color(*ACCENT)
    pdf.cell(width, 4.5, label.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_draw_color(*ACCENT)
    pdf.line(x, pdf.get_y(), x + width, pdf.get_y())
    pdf.set_draw_color(*RULE)
    pdf.ln(1.5)
    pdf.set_x(x)
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, "B", 10)
    pdf.multi_cell(width, 5, name, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 8.5)
    for row in rows:
        pdf.set_x(x)
        pdf.multi_cell(width, 4.4, row, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    return pdf.get_y()


def _parties(pdf: FPDF, invoice: Invoice, seller: dict) -> None:
    top = pdf.get_y()
    width = (CONTENT_WIDTH - 10) / 2
    seller_rows = [
        seller.get("address", ""),
        f"Reģ. Nr. / Reg. No.: {seller.get('reg_no', '')}",
        f"PVN Nr. / VAT No.: {seller.get('vat_no', '')}",
    ]
    if seller.get("email"):
        seller_rows.append(f"E-pasts / Email: {seller['email']}")
    buyer_rows = []
    if invoice.buyer_address:
        buyer_rows.append(invoice.buyer_address)
    if invoice.buyer_reg_no:
        buyer_rows.append(f"Reģ. Nr. / Reg. No.: {invoice.buyer_reg_no}")
    seller_end = _party(
        pdf, MARGIN, width, "Pārdevējs / Seller", seller.get("name", ""), seller_rows
    )
    pdf.set_y(top)
    buyer_end = _party(
        pdf, MARGIN + width + 10, width, "Pircējs / Buyer", invoice.buyer_name, buyer_rows
    )
    pdf.set_xy(MARGIN, max(seller_end, buyer_end) + 7)


LINE_COLUMNS = [
    # (heading, width, alignment)
    ("Nr.\nNo.", 9, "CENTER"),
    ("Kods\nSKU", 27, "LEFT"),
    ("Nosaukums\nDescription", 59, "LEFT"),
    ("Daudz.\nQty", 14, "RIGHT"),
    ("Cena ar PVN\nUnit price incl. VAT", 32, "RIGHT"),
    ("PVN\nVAT", 13, "RIGHT"),
    ("Summa ar PVN\nTotal incl. VAT", 26, "RIGHT"),
]


def _table(pdf: FPDF, columns, rows, *, width: float | None = None, align: str = "LEFT"):
    pdf.set_font(FONT, "", 8.5)
    pdf.set_draw_color(*RULE)
    with pdf.table(
        col_widths=[w for _, w, _ in columns],
        width=width or sum(w for _, w, _ in columns),
        align=align,
        text_align=tuple(a for _, _, a in columns),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(
            family=FONT, emphasis="BOLD", size_pt=7.5, color=ACCENT, fill_color=SHADE
        ),
        cell_fill_color=STRIPE,
        cell_fill_mode=TableCellFillMode.EVEN_ROWS,
        line_height=4.4,
        padding=(1.6, 1.6, 1.6, 1.6),
        v_align="MIDDLE",
        repeat_headings=1,
    ) as table:
        heading = table.row()
        for text, _, _ in columns:
            heading.cell(text)
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)


def _lines(pdf: FPDF, invoice: Invoice) -> None:
    rows = [
        (
            str(index),
            line.sku,
            line.description,
            str(line.quantity),
            format_money(line.unit_price),
            format_rate(line.vat_rate),
            format_money(line.total),
        )
        for index, line in enumerate(invoice.lines.all(), start=1)
    ]
    _table(pdf, LINE_COLUMNS, rows, width=CONTENT_WIDTH)
    pdf.ln(6)


VAT_COLUMNS = [
    ("PVN likme\nVAT rate", 19, "RIGHT"),
    ("Apliekamā summa\nTaxable amount", 31, "RIGHT"),
    ("PVN summa\nVAT amount", 26, "RIGHT"),
    ("Summa ar PVN\nTotal incl. VAT", 27, "RIGHT"),
]
TOTALS_HEIGHT = 38  # the two total rows and the "total due" box beside the VAT table


def _summary(pdf: FPDF, invoice: Invoice) -> None:
    """R9/R0.1: taxable amount and VAT per rate (rounded per rate), then the totals."""
    breakdown = invoice.vat_breakdown or []
    vat_table_height = 17 + 8 * len(breakdown)
    if pdf.get_y() + max(vat_table_height, TOTALS_HEIGHT) > pdf.page_break_trigger:
        pdf.add_page()
    top = pdf.get_y()
    _label(pdf, "PVN aprēķins / VAT by rate")
    _table(
        pdf,
        VAT_COLUMNS,
        [
            (
                format_rate(row["rate"]),
                format_money(row["taxable"]),
                format_money(row["vat"]),
                format_money(row["gross"]),
            )
            for row in breakdown
        ],
    )
    vat_end = pdf.get_y()

    taxable = to_money(sum((Decimal(row["taxable"]) for row in breakdown), ZERO))
    vat = to_money(sum((Decimal(row["vat"]) for row in breakdown), ZERO))
    x = MARGIN + sum(w for _, w, _ in VAT_COLUMNS) + 7
    width = PAGE_WIDTH - MARGIN - x
    pdf.set_y(top + 4.5)
    for label, value in [
        ("Bez PVN / Excl. VAT", format_money(taxable)),
        ("PVN / VAT", format_money(vat)),
    ]:
        pdf.set_x(x)
        pdf.set_font(FONT, "", 8.5)
        pdf.set_text_color(*MUTED)
        pdf.cell(width - 32, 6.5, label)
        pdf.set_text_color(*INK)
        pdf.set_font(FONT, "", 9)
        pdf.cell(32, 6.5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    box_top = pdf.get_y() + 1.5
    pdf.set_fill_color(*ACCENT)
    pdf.rect(x, box_top, width, 16, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_xy(x + 3, box_top + 1.5)
    pdf.set_font(FONT, "B", 8.5)
    label = "Kopā apmaksai / Total due" if invoice.kind == InvoiceKind.INVOICE else "Kopā / Total"
    pdf.cell(width - 6, 5, label, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "B", 13)
    pdf.cell(width - 6, 8, format_money(invoice.total), align="R")
    pdf.set_text_color(*INK)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_xy(MARGIN, max(vat_end, box_top + 16) + 8)


def _payment_details(pdf: FPDF, invoice: Invoice, seller: dict) -> None:
    """R9/R11: where to pay, and the payment reference (the invoice number)."""
    iban = seller.get("iban") or settings.SHOP["SELLER_IBAN"]
    bic = seller.get("bic") or settings.SHOP["SELLER_BIC"]
    rows = [
        ("Saņēmējs / Beneficiary", seller.get("name", "")),
        ("Konts / Account (IBAN)", _group_iban(iban)),
        ("Banka / Bank (BIC)", bic),
        ("Maksājuma mērķis / Payment reference", invoice.payment_reference),
        ("Summa / Amount", format_money(invoice.total)),
        ("Apmaksāt līdz / Due date", format_date(invoice.due_date)),
    ]
    height = 4.5 + 2 + 5.5 * len(rows) + 12
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
    _label(pdf, "Maksājuma rekvizīti / Payment details")
    top = pdf.get_y() + 1
    box_height = 5.5 * len(rows) + 4
    pdf.set_fill_color(*SHADE)
    pdf.rect(MARGIN, top, CONTENT_WIDTH, box_height, style="F")
    pdf.set_y(top + 2)
    for label, value in rows:
        pdf.set_x(MARGIN + 4)
        pdf.set_font(FONT, "", 8.5)
        pdf.set_text_color(*MUTED)
        pdf.cell(68, 5.5, label)
        pdf.set_text_color(*INK)
        pdf.set_font(FONT, "B", 9)
        pdf.cell(CONTENT_WIDTH - 76, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(top + box_height + 2)
    pdf.set_font(FONT, "", 8)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(
        CONTENT_WIDTH,
        4.2,
        "Lūdzam maksājuma mērķī norādīt rēķina numuru. / "
        "Please quote the invoice number as the payment reference.",
        align="L",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(*INK)


def _group_iban(iban: str) -> str:
    """Printed in groups of four, as banks do; the text stays a valid IBAN without spaces."""
    compact = "".join(iban.split())
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


# --- Delivery: web and email ------------------------------------------------------------


def invoice_pdf_response(order: Order) -> FileResponse:
    """R9: the order's invoice (the first one of kind invoice), shown inline."""
    invoice = (
        order.invoices.filter(kind=InvoiceKind.INVOICE)
        .select_related("corrects")
        .prefetch_related("lines")
        .order_by("issued_at", "pk")
        .first()
    )
    if invoice is None:
        raise Http404("No invoice for this order.")
    invoice.order = order
    response = FileResponse(
        io.BytesIO(render_invoice_pdf(invoice)),
        content_type="application/pdf",
        filename=f"{invoice.number}.pdf",
        as_attachment=False,
    )
    response["Cache-Control"] = "private, no-store"  # the buyer's personal data
    return response


@attachment_builder("invoice_pdf")
def invoice_attachment(invoice_id: int) -> tuple[str, bytes, str]:
    invoice = (
        Invoice.objects.select_related("order", "corrects")
        .prefetch_related("lines")
        .get(pk=invoice_id)
    )
    return f"{invoice.number}.pdf", render_invoice_pdf(invoice), "application/pdf"
