"""R6: the default tariff (EUR 2.00, free above EUR 50.00), so a fresh install charges
correctly."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations


def create_default_tariff(apps, schema_editor):
    DeliveryTariff = apps.get_model("delivery", "DeliveryTariff")
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        )


class Migration(migrations.Migration):
    dependencies = [("delivery", "0001_initial")]

    operations = [migrations.RunPython(create_default_tariff, migrations.RunPython.noop)]
