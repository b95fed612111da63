from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveryConfig(AppConfig):
    name = "delivery"
    verbose_name = _("Delivery")

    def ready(self) -> None:
        from delivery import services  # noqa: F401  registers the outbox handler
        from shop.celery import add_schedule

        # R14b: Omniva has no push; the poller asks about open shipments every minute.
        add_schedule(
            "poll-courier-tracking",
            "delivery.tasks.poll_courier_tracking",
            timedelta(minutes=1),
        )
