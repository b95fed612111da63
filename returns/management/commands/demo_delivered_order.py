"""demo_delivered_order: a delivered demo order, to try the right of withdrawal end to end.

    manage.py seed_demo                 # once (make run does it)
    manage.py demo_delivered_order      # prints the emails, with the withdrawal link

The order goes through the real services: checkout (R1-R9), a bank payment (R11), a
shipment recorded by hand with a barcode (R14a) and the courier's `delivered` event
(R14b), which starts the 14-day period (R16). The emails are printed on the console (the
default email backend); the last lines repeat the links to open in a browser.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from delivery.services import CourierEventData, apply_courier_event, register_shipment
from orders.links import order_url
from orders.models import PaymentMethod
from orders.services.checkout import CustomerData, DeliveryData, LineRequest, place_order
from orders.services.payments import record_payment
from returns.withdrawals.links import withdraw_url

DEMO_PAYER_IBAN = "LV80BANK0000435195001"  # valid checksum, not a real account


class Command(BaseCommand):
    help = "Place, pay, ship and deliver a demo order; print its withdrawal link."

    def add_arguments(self, parser):
        parser.add_argument("--email", default="anna@example.lv")
        parser.add_argument(
            "--sku",
            action="append",
            dest="skus",
            help="A demo SKU (repeat for more lines). Default: KEU-001 and KEU-003.",
        )
        parser.add_argument(
            "--days-ago",
            type=int,
            default=1,
            help="Delivered this many days ago (over 14: the period is over).",
        )

    def handle(self, *args, email, skus, days_ago, **options):
        from legal.models import TermsVersion

        terms = TermsVersion.objects.in_force(timezone.now())
        if terms is None:
            raise CommandError("No terms in force: run `manage.py seed_demo` first.")
        delivered_at = timezone.now() - timedelta(days=days_ago)
        placed = place_order(
            customer=CustomerData(
                first_name="Anna", last_name="Bērziņa", email=email, phone="+37120000000"
            ),
            capacity="adult",
            delivery=_delivery(),
            lines=[LineRequest(sku=sku, quantity=1) for sku in (skus or ["KEU-001", "KEU-003"])],
            accepted_terms_version=terms.version,
            now=delivered_at - timedelta(days=2),
        )
        order = placed.order
        record_payment(
            order_id=order.pk,
            amount=order.total,
            method=PaymentMethod.BANK_TRANSFER,
            received_at=delivered_at - timedelta(days=2),
            payer_name="Anna Bērziņa",
            payer_iban=DEMO_PAYER_IBAN,
        )
        barcode = f"CE{secrets.randbelow(10**9):09d}LV"
        with transaction.atomic():
            register_shipment(order_id=order.pk, barcode=barcode, at=delivered_at - timedelta(1))
        apply_courier_event(
            event=CourierEventData(
                event_id=f"demo-delivered-{barcode}",
                barcode=barcode,
                event="delivered",
                occurred_at=delivered_at,
                location="Rīga",
            )
        )
        self.stdout.write("")
        self.stdout.write(f"Order {order.number}, delivered {delivered_at:%Y-%m-%d %H:%M} UTC.")
        self.stdout.write(f"  Order page:          {order_url(order.number)}")
        self.stdout.write(f"  Withdrawal button:   {withdraw_url(order.number)}")
        self.stdout.write(f"  API token (X-Order-Token): {placed.access_token}")


def _delivery() -> DeliveryData:
    from delivery.models import ParcelMachine

    machine = ParcelMachine.objects.filter(active=True).order_by("zip").first()
    if machine is None:
        raise CommandError("No parcel machines: run `manage.py seed_demo` first.")
    return DeliveryData(method="omniva_parcel_machine", parcel_machine_id=machine.zip)
