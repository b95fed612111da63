"""factory-boy factories shared by the suite."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory

from orders.services.checkout import (
    CustomerData,
    DeliveryData,
    LineRequest,
    PlacedOrder,
    place_order,
)
from shop.models import Product


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"TST-{n:04d}")
    name_lv = factory.Sequence(lambda n: f"Šampūns {n}")
    name_en = factory.Sequence(lambda n: f"Shampoo {n}")
    price = Decimal("10.00")
    vat_category = "standard"
    stock = 100
    sealed_hygiene = False
    active = True


class TermsVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "legal.TermsVersion"
        django_get_or_create = ("version",)

    version = "2026-01"
    effective_from = factory.LazyFunction(lambda: datetime(2025, 12, 1, tzinfo=UTC))
    text_lv = "Lietošanas noteikumi"
    text_en = "Terms of use"


class PrivacyPolicyVersionFactory(TermsVersionFactory):
    class Meta:
        model = "legal.PrivacyPolicyVersion"
        django_get_or_create = ("version",)

    text_lv = "Privātuma politika"
    text_en = "Privacy policy"


class ParcelMachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "delivery.ParcelMachine"
        django_get_or_create = ("zip",)

    zip = "9001"
    name = "Rīga Origo Omniva pakomāts"
    city = "Rīga"
    address = "Stacijas laukums 2"
    active = True


def customer_data(**overrides) -> CustomerData:
    values = {
        "first_name": "Anna",
        "last_name": "Bērziņa",
        "email": "anna@example.lv",
        "phone": "+37120000000",
    }
    values.update(overrides)
    return CustomerData(**values)


def place_test_order(
    lines: list[tuple[str, int]] | None = None,
    *,
    prices: dict[str, Decimal] | None = None,
    customer: dict | None = None,
    delivery: DeliveryData | None = None,
    now: datetime | None = None,
    **kwargs,
) -> PlacedOrder:
    """Place an order through the real checkout service, creating what it needs.

    `lines` are (sku, quantity); products are created on the fly with `prices`
    (default EUR 10.00 each)."""
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
    lines = lines or [("KEU-001", 1)]
    prices = prices or {}
    for sku, _quantity in lines:
        ProductFactory(sku=sku, price=prices.get(sku, Decimal("10.00")))
    return place_order(
        customer=customer_data(**(customer or {})),
        capacity="adult",
        delivery=delivery or DeliveryData(method="omniva_parcel_machine", parcel_machine_id="9001"),
        lines=[LineRequest(sku=sku, quantity=quantity) for sku, quantity in lines],
        accepted_terms_version="2026-01",
        now=now,
        **kwargs,
    )


# --- Upload files that really are what they claim (issue 14: uploads are re-encoded) -------


def image_bytes(image_format: str = "PNG", size: tuple[int, int] = (8, 8)) -> bytes:
    """A real, decodable JPEG or PNG (uploads are re-encoded with Pillow)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format=image_format)
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    """A real one-page PDF without scripts or actions (pypdf reads it)."""
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
