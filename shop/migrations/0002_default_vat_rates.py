"""R0.1: Latvia's VAT rates as data, so a fresh install prices correctly."""

from datetime import date
from decimal import Decimal

from django.db import migrations

RATES = [
    ("standard", Decimal("21.00"), date(2012, 7, 1)),
    ("reduced", Decimal("12.00"), date(2011, 1, 1)),
    ("super_reduced", Decimal("5.00"), date(2018, 1, 1)),
]


def create_rates(apps, schema_editor):
    VatRate = apps.get_model("shop", "VatRate")
    for category, rate, effective_from in RATES:
        VatRate.objects.get_or_create(
            category=category, effective_from=effective_from, defaults={"rate": rate}
        )


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RunPython(create_rates, migrations.RunPython.noop)]
