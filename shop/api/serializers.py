from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from shop.models import Product


class ProductSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    vat_rate = serializers.SerializerMethodField()
    in_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = [
            "sku",
            "name",
            "name_lv",
            "name_en",
            "price",
            "vat_rate",
            "in_stock",
            "sealed_hygiene",
            "warranty_months",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DecimalField(max_digits=5, decimal_places=2))
    def get_vat_rate(self, product: Product) -> str | None:
        rates: dict[str, Decimal] = self.context["vat_rates"]
        rate = rates.get(product.vat_category)
        return None if rate is None else f"{rate:.2f}"
