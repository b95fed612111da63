"""Card payment providers behind a small interface (R11s); a setting picks the adapter.

Card payments are on when `settings.STRIPE_API_KEY` is set; `settings.CARD_PAYMENT_GATEWAY`
names the adapter class (Stripe's, pointed at `settings.STRIPE_API_BASE`, which is
localstripe on loopback in tests and in `make run STRIPE=localstripe`). Settings are read
on every call, so tests can override them.

The services in `orders.services.card_payments` speak only this interface: plain values
in (integer cents, metadata, an idempotency key), plain values out, and two errors:
`GatewayUnavailable` (try again later, with the same idempotency key) and
`GatewayRejected` (the provider refused the request; trying again will not help).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string


class GatewayError(Exception):
    """The card payment provider did not do what was asked."""


class GatewayUnavailable(GatewayError):
    """Network error, timeout, rate limit, provider error or bad credentials: retry later."""


class GatewayRejected(GatewayError):
    """The provider refused the request (4xx); the same request will be refused again."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PaymentIntentInfo:
    id: str
    client_secret: str
    amount_cents: int
    currency: str
    status: str


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount_cents: int
    failure_reason: str = ""


class CardGateway(Protocol):
    def create_payment_intent(
        self, *, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentIntentInfo: ...

    def create_refund(
        self,
        *,
        payment_intent: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> ProviderRefund: ...

    def find_refund(self, *, payment_intent: str, refund_key: str) -> ProviderRefund | None:
        """The refund of `payment_intent` whose metadata `refund_id` is `refund_key`."""
        ...


def card_payments_enabled() -> bool:
    return bool(settings.STRIPE_API_KEY)


def get_card_gateway() -> CardGateway | None:
    """The configured adapter, or None while card payments are off."""
    if not card_payments_enabled():
        return None
    return import_string(settings.CARD_PAYMENT_GATEWAY).from_settings()


@checks.register("payments")
def check_stripe_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Card payments on without a webhook secret would take money and never record it."""
    if settings.STRIPE_API_KEY and not settings.STRIPE_WEBHOOK_SECRET:
        return [
            checks.Warning(
                "STRIPE_API_KEY is set but STRIPE_WEBHOOK_SECRET is not: every Stripe event "
                "is refused, so card payments are never recorded.",
                hint="Set STRIPE_WEBHOOK_SECRET to the signing secret of the Stripe webhook "
                "endpoint /api/webhooks/stripe/.",
                id="orders.W101",
            )
        ]
    return []
