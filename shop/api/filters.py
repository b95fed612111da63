from decimal import Decimal

import django_filters
from django.db.models import Q

from shop.models import Product, VatCategory

PRICE_BOUNDS = {
    "min_value": Decimal("0"),
    "max_value": Decimal("9999999999.99"),
    "max_digits": 12,
    "decimal_places": 2,
}


class StableOrderingFilter(django_filters.OrderingFilter):
    """`ordering`, with the SKU as the last key, so pages never overlap or skip a product
    (`?ordering=,` used to drop the ordering altogether; schemathesis found it)."""

    def filter(self, qs, value):
        value = [part for part in (value or []) if part]
        qs = super().filter(qs, value) if value else qs
        keys = list(qs.query.order_by)
        if not any(str(key).lstrip("-") == "sku" for key in keys):
            keys.append("sku")
        return qs.order_by(*keys)


class ProductFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="SKU or name contains")
    in_stock = django_filters.BooleanFilter(method="filter_in_stock")
    sealed_hygiene = django_filters.BooleanFilter()
    vat_category = django_filters.ChoiceFilter(choices=VatCategory.choices)
    # Bounded like the price column (12 digits, 2 decimals): anything else is a 400, not a
    # database error (schemathesis found -3e208 here).
    min_price = django_filters.NumberFilter(
        field_name="price", lookup_expr="gte", **PRICE_BOUNDS, label="Lowest price, EUR"
    )
    max_price = django_filters.NumberFilter(
        field_name="price", lookup_expr="lte", **PRICE_BOUNDS, label="Highest price, EUR"
    )
    ordering = StableOrderingFilter(fields=["sku", "price", "name_lv"])

    class Meta:
        model = Product
        fields = ["sealed_hygiene", "vat_category"]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(sku__icontains=value) | Q(name_lv__icontains=value) | Q(name_en__icontains=value)
        )

    def filter_in_stock(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(stock__gt=0) if value else queryset.filter(stock=0)
