"""factory-boy factories shared by the suite."""

from __future__ import annotations

from decimal import Decimal

import factory

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
