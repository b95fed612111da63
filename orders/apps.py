from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders, invoices and payments")

    def ready(self) -> None:
        from orders import (
            deadlines,  # noqa: F401  registers the deadline jobs
            emails,  # noqa: F401  registers the email context builders
        )
        from orders.services import (
            card_payments,  # noqa: F401  registers stripe.refund
            invoicing_pdf,  # noqa: F401  registers the PDF attachment
        )
