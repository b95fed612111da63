from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReturnsConfig(AppConfig):
    name = "returns"
    verbose_name = _("Withdrawals and claims")

    def ready(self) -> None:
        from returns.claims import deadlines  # noqa: F401  registers overdue_claims (R25)

        # R28: claims and withdrawals declare their holds in their personal_data.py.
        from returns.withdrawals import deadlines as withdrawal_deadlines  # noqa: F401
        from returns.withdrawals import shipping

        shipping.connect_return_delivered()  # R20: `return_delivered` marks goods received
