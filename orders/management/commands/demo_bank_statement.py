"""demo_bank_statement ORDER_NUMBER: a camt.053 file that pays an order, to try R11 end to end.

manage.py demo_bank_statement ABCD2345 --output /tmp/pay.xml
manage.py import_bank_statement /tmp/pay.xml      # the order is now paid
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from orders import camt
from orders.models import InvoiceKind, Order
from orders.services.refunds import paid_total
from shop.money import to_money
from shop.selectors import today_in_riga

DEMO_DEBTOR_IBAN = "LV80BANK0000435195001"  # a valid Latvian IBAN (checksum), not a real account


class Command(BaseCommand):
    help = (
        "Write a camt.053.001.02 statement with one booked credit that pays the order's "
        "open amount, with its invoice number in the remittance information."
    )

    def add_arguments(self, parser):
        parser.add_argument("order_number", metavar="ORDER_NUMBER")
        parser.add_argument(
            "--output", "-o", metavar="PATH", help="Default: camt053-<ORDER_NUMBER>.xml here."
        )
        parser.add_argument(
            "--amount",
            metavar="EUR",
            help="Pay this amount instead of the open amount (try partial or overpayment).",
        )

    def handle(self, *args, order_number: str, output: str | None, amount: str | None, **opts):
        order = Order.objects.filter(number=order_number.strip().upper()).first()
        if order is None:
            raise CommandError(f"No order has the number {order_number!r}.")
        invoice = order.invoices.filter(kind=InvoiceKind.INVOICE).order_by("issued_at").first()
        if invoice is None:
            raise CommandError(f"Order {order.number} has no invoice.")
        if amount is not None:
            try:
                to_pay = to_money(amount)
            except ValueError as exc:
                raise CommandError(f"Not an amount: {amount!r}") from exc
        else:
            to_pay = order.total - paid_total(order)
        if to_pay <= 0:
            raise CommandError(
                f"Order {order.number} has nothing open to pay; use --amount to pay anyway."
            )
        now = timezone.now()
        reference = f"DEMO{secrets.token_hex(8).upper()}"
        content = camt.build_camt053(
            account_iban=settings.SHOP["SELLER_IBAN"],
            statement_id=f"DEMO-{order.number}-{now:%Y%m%d%H%M%S}",
            created_at=timezone.localtime(now),
            credits=[
                camt.OutgoingCredit(
                    amount=to_pay,
                    booking_date=today_in_riga(),
                    reference=reference,
                    debtor_name=order.customer_name or "Demo Payer",
                    debtor_iban=DEMO_DEBTOR_IBAN,
                    remittance_info=f"Rekins {invoice.number}",
                )
            ],
        )
        path = Path(output) if output else Path(f"camt053-{order.number}.xml")
        try:
            path.write_bytes(content)
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror}") from exc
        note = " (the order is cancelled: the money will be refunded)" if order.is_cancelled else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {path}: EUR {to_pay} for invoice {invoice.number}{note}.\n"
                f"Import it with: manage.py import_bank_statement {path}"
            )
        )
