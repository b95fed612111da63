"""R31, double opt-in: `Consent.confirmed_at`. Consents recorded before this change count
as confirmed when given (they were taken under the rules of the time); new ones from
checkout wait for the emailed confirmation."""

from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor):
    Consent = apps.get_model("legal", "Consent")
    Consent.objects.filter(confirmed_at__isnull=True).update(confirmed_at=F("given_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("legal", "0007_erasure_order_unindexed"),
    ]

    operations = [
        migrations.AddField(
            model_name="consent",
            name="confirmed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="confirmed at"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
