from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveryConfig(AppConfig):
    name = "delivery"
    verbose_name = _("Delivery")

    def ready(self) -> None:
        from delivery import services  # registers the outbox handler
        from orders.selectors import on_goods_on_their_way
        from orders.services.lifecycle import on_order_cancelled
        from shop.celery import add_schedule

        # R14a: a cancelled order's shipments waiting for registration are stopped.
        on_order_cancelled(services.stop_shipments_of_cancelled_order)
        # R16: goods still on their way hold the withdrawal period open.
        on_goods_on_their_way(services.parcel_on_its_way)

        # R14b: Omniva has no push; the poller asks about open shipments every minute.
        add_schedule(
            "poll-courier-tracking",
            "delivery.tasks.poll_courier_tracking",
            timedelta(minutes=1),
        )
