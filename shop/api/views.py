from rest_framework import viewsets

from shop import selectors
from shop.api.filters import ProductFilter
from shop.api.serializers import ProductSerializer


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    """The catalogue: active products with their gross price and VAT rate in force."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    lookup_field = "sku"

    def get_queryset(self):
        return selectors.active_products().order_by("sku")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["vat_rates"] = selectors.vat_rates_in_force()
        return context
