import django_filters
from django.db.models import Q

from shop.models import Product, VatCategory


class ProductFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="SKU or name contains")
    in_stock = django_filters.BooleanFilter(method="filter_in_stock")
    sealed_hygiene = django_filters.BooleanFilter()
    vat_category = django_filters.ChoiceFilter(choices=VatCategory.choices)
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
    ordering = django_filters.OrderingFilter(fields=["sku", "price", "name_lv"])

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
