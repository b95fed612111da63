from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LegalConfig(AppConfig):
    name = "legal"
    verbose_name = _("Terms and personal data")

    def ready(self) -> None:
        from celery.schedules import crontab
        from django.utils.module_loading import autodiscover_modules

        from legal import (
            checks,  # noqa: F401  registers legal.W001 / legal.W002
            holds,  # noqa: F401  declares legal's own holds (R28: staff, refunds, Art 18)
        )
        from legal.log_redaction import connect_celery_logging
        from shop.celery import add_schedule

        # R26: every app declares its personal data in `<app>/personal_data.py`.
        autodiscover_modules("personal_data")
        # R29: the retention sweep, every night (CELERY_TIMEZONE is Europe/Riga).
        add_schedule(
            "enforce-retention", "legal.tasks.enforce_retention", crontab(hour=2, minute=30)
        )
        connect_celery_logging()
        from legal.services import accounts  # noqa: F401  registers the email-link handler
