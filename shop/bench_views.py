"""Bare baseline endpoints for `make bench` (bench/): the fastest the same writes could be.

Mounted under /bench/ only when the setting BENCH_BASELINE is true (env
`BENCH_BASELINE=true`, which only the benchmark sets); never in production. Each one
writes the same rows as the real endpoint it is compared with, with none of the rules:
no validation beyond `json.loads`, no terms, tariff, VAT, calendar or capacity checks, no
row locks, no gapless invoice number, no history rows, no email, no outbox, no
serializer. The ratio real/baseline is what the rules and the framework cost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, When
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from delivery.models import DeliveryTariff
from legal.models import TermsVersion
from orders.models import Invoice, InvoiceLine, Order, OrderLine
from shop.models import Product

_static: dict[str, int] = {}


def _static_ids() -> dict[str, int]:
    """The terms version and tariff every baseline order points to (read once)."""
    if not _static:
        _static["terms"] = TermsVersion.objects.order_by("-effective_from").values_list(
            "pk", flat=True
        )[0]
        _static["tariff"] = DeliveryTariff.objects.order_by("-effective_from").values_list(
            "pk", flat=True
        )[0]
    return _static


@csrf_exempt
@require_POST
def checkout_baseline(request: HttpRequest) -> JsonResponse:
    """Order, its lines, the stock decrement, the invoice and its lines: 6 statements."""
    data = json.loads(request.body)
    quantities = {line["sku"]: int(line["quantity"]) for line in data["lines"]}
    customer = data["customer"]
    now = timezone.now()
    ids = _static_ids()
    with transaction.atomic():
        products = list(Product.objects.filter(sku__in=quantities))
        totals = [(p, quantities[p.sku], p.price * quantities[p.sku]) for p in products]
        total = sum((t for _p, _q, t in totals), Decimal("0.00"))
        (order,) = Order.objects.bulk_create(
            [
                Order(
                    number=secrets.token_hex(8).upper(),
                    access_token_hash=secrets.token_hex(32),
                    placed_at=now,
                    terms_version_id=ids["terms"],
                    capacity=data["capacity"],
                    first_name=customer["first_name"],
                    last_name=customer["last_name"],
                    email=customer["email"],
                    phone=customer["phone"],
                    delivery_method=data["delivery"]["method"],
                    tariff_id=ids["tariff"],
                    goods_total=total,
                    total=total,
                    contact_deadline=now + timedelta(days=3),
                    payment_due_at=now + timedelta(days=5),
                )
            ]
        )
        OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=order,
                    product=p,
                    sku=p.sku,
                    name_lv=p.name_lv,
                    name_en=p.name_en,
                    unit_price=p.price,
                    vat_rate=Decimal("21.00"),
                    quantity=q,
                    line_total=t,
                )
                for p, q, t in totals
            ]
        )
        Product.objects.filter(sku__in=quantities).update(
            stock=Case(*(When(sku=sku, then=F("stock") - q) for sku, q in quantities.items()))
        )
        (invoice,) = Invoice.objects.bulk_create(
            [
                Invoice(
                    order=order,
                    number=f"BENCH-{order.pk}",
                    series="BENCH",
                    year=now.year,
                    sequence=order.pk,
                    issued_at=now,
                    issue_date=now.date(),
                    buyer_name=f"{customer['first_name']} {customer['last_name']}",
                    total=total,
                )
            ]
        )
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    invoice=invoice,
                    description=p.name_lv,
                    sku=p.sku,
                    quantity=q,
                    unit_price=p.price,
                    vat_rate=Decimal("21.00"),
                    total=t,
                )
                for p, q, t in totals
            ]
        )
    return JsonResponse({"number": order.number, "total": str(total)}, status=201)


@csrf_exempt
@require_POST
def webhook_baseline(request: HttpRequest) -> JsonResponse:
    """The courier webhook without its rules: check the HMAC and the timestamp, store the
    raw event once under its id (one INSERT ... ON CONFLICT DO NOTHING), answer."""
    from delivery.models import CourierEvent

    timestamp = request.headers.get("X-Omniva-Timestamp", "")
    expected = hmac.new(
        settings.OMNIVA_WEBHOOK_SECRET.encode(),
        timestamp.encode() + b"." + request.body,
        hashlib.sha256,
    ).hexdigest()
    given = request.headers.get("X-Omniva-Signature", "").removeprefix("sha256=")
    if not hmac.compare_digest(expected, given) or abs(time.time() - int(timestamp)) > 300:
        return JsonResponse({"result": "invalid_signature"}, status=401)
    data = json.loads(request.body)
    CourierEvent.objects.bulk_create(
        [
            CourierEvent(
                source="omniva",
                event_id=data["event_id"],
                barcode=data["barcode"],
                event=data["event"],
                occurred_at=data["occurred_at"],
                location=data.get("location") or "",
                reason=data.get("reason") or "",
                payload=data,
            )
        ],
        ignore_conflicts=True,
    )
    return JsonResponse({"result": "applied"})


urlpatterns = [
    path("checkout/", checkout_baseline, name="bench-checkout-baseline"),
    path("webhook/", webhook_baseline, name="bench-webhook-baseline"),
]
