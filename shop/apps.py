from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = _("Catalogue and shared kernel")

    def ready(self) -> None:
        from shop import mail  # noqa: F401  registers the email outbox handler
