"""Invoices (R9): gapless numbers per series and year, issued in the order's transaction."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from orders.models import Invoice, InvoiceCounter, InvoiceKind, InvoiceLine, Order, OrderLine
from shop.calendar import riga_date
from shop.money import ZERO, line_total, to_money, vat_in_gross


def allocate_invoice_number(*, series: str, year: int) -> tuple[str, int]:
    """The next number of a series and year, under the counter's row lock.

    One `UPDATE ... RETURNING` raises the counter and locks its row until the caller's
    transaction ends: a rollback gives the number back, so no number is skipped or used
    twice (R9), and concurrent checkouts take numbers one after the other.
    """
    table = connection.ops.quote_name(InvoiceCounter._meta.db_table)
    increment = (
        f"UPDATE {table} SET last_number = last_number + 1 "  # noqa: S608  (no user input)
        "WHERE series = %s AND year = %s RETURNING last_number"
    )
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(increment, [series, year])
        row = cursor.fetchone()
        if row is None:  # the first number of the year
            try:
                with transaction.atomic():
                    InvoiceCounter.objects.create(series=series, year=year, last_number=0)
            except IntegrityError:
                pass  # another transaction created it first
            cursor.execute(increment, [series, year])
            row = cursor.fetchone()
    sequence = row[0]
    return f"{series}-{year}-{sequence:06d}", sequence


def vat_breakdown(lines: list[tuple[Decimal, Decimal]]) -> list[dict[str, str]]:
    """R0.1/R9: taxable amount and VAT per rate from (gross, rate) pairs, rounded per rate."""
    gross_by_rate: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for gross, rate in lines:
        gross_by_rate[Decimal(rate)] += gross
    rows = []
    for rate in sorted(gross_by_rate, reverse=True):
        gross = to_money(gross_by_rate[rate])
        vat = vat_in_gross(gross, rate)
        rows.append(
            {
                "rate": f"{rate:.2f}",
                "taxable": str(gross - vat),
                "vat": str(vat),
                "gross": str(gross),
            }
        )
    return rows


def seller_snapshot() -> dict[str, str]:
    shop = settings.SHOP
    return {
        "name": shop["SELLER_NAME"],
        "reg_no": shop["SELLER_REG_NO"],
        "vat_no": shop["SELLER_VAT_NO"],
        "address": shop["SELLER_ADDRESS"],
        "email": shop["SELLER_EMAIL"],
        "iban": shop["SELLER_IBAN"],
        "bic": shop["SELLER_BIC"],
    }


def _buyer(order: Order) -> dict[str, str]:
    if order.is_consumer:
        name = order.customer_name
    else:
        name = f"{order.company_name} ({order.customer_name})"
    return {
        "buyer_name": name[:300],
        "buyer_address": order.delivery_address_text[:400],
        "buyer_reg_no": order.company_reg_no,
    }


def issue_invoice(*, order: Order, lines: list[OrderLine], due_date: date) -> Invoice:
    """The order's invoice: goods lines and the delivery fee with the goods' VAT rate."""
    rows = [
        (f"{line.name_lv}", line.sku, line.quantity, line.unit_price, line.vat_rate)
        for line in lines
    ]
    if order.delivery_fee > 0:
        # The delivery fee follows the VAT rate of the goods (the highest rate present).
        fee_rate = max(line.vat_rate for line in lines)
        rows.append(("Piegāde / Delivery", "", 1, order.delivery_fee, fee_rate))
    return _issue(order=order, kind=InvoiceKind.INVOICE, rows=rows, due_date=due_date)


def issue_credit_note(
    *, order: Order, corrects: Invoice, rows: list[tuple[str, str, int, Decimal, Decimal]]
) -> Invoice:
    """A credit note (negative quantities) correcting an invoice."""
    return _issue(order=order, kind=InvoiceKind.CREDIT_NOTE, rows=rows, corrects=corrects)


def issue_invoice_correction(
    *, order: Order, corrects: Invoice, rows: list[tuple[str, str, int, Decimal, Decimal]]
) -> Invoice:
    """A supplementary invoice for an amount the customer owes on top (R13 substitution)."""
    return _issue(
        order=order,
        kind=InvoiceKind.INVOICE,
        rows=rows,
        corrects=corrects,
        due_date=corrects.due_date if corrects else None,
    )


def _issue(*, order, kind, rows, due_date=None, corrects=None) -> Invoice:
    now = timezone.now()
    year = riga_date(now).year
    series = settings.SHOP["INVOICE_SERIES"]
    if kind == InvoiceKind.CREDIT_NOTE:
        series = f"{series}K"
    number, sequence = allocate_invoice_number(series=series, year=year)
    totals = [(line_total(price, qty), rate) for _, _, qty, price, rate in rows]
    invoice = Invoice.objects.create(
        order=order,
        kind=kind,
        corrects=corrects,
        number=number,
        series=series,
        year=year,
        sequence=sequence,
        issued_at=now,
        issue_date=riga_date(now),
        due_date=due_date,
        seller=seller_snapshot(),
        total=to_money(sum((t for t, _ in totals), ZERO)),
        vat_breakdown=vat_breakdown(totals),
        **_buyer(order),
    )
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice,
                description=description,
                sku=sku,
                quantity=qty,
                unit_price=price,
                vat_rate=rate,
                total=line_total(price, qty),
            )
            for description, sku, qty, price, rate in rows
        ]
    )
    return invoice
