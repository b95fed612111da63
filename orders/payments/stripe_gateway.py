"""The Stripe adapter (R11s): stripe-python's `StripeClient`, with a configurable API base.

Amounts cross this boundary as integer cents (STYLE.md: convert only here). Every write
carries an idempotency key chosen by the caller, so a retry after a network error never
pays or refunds twice at Stripe. Errors become `GatewayUnavailable` or `GatewayRejected`;
log lines carry the error type and code, never personal data.
"""

from __future__ import annotations

import logging

import stripe
from django.conf import settings

from orders.payments import (
    GatewayRejected,
    GatewayUnavailable,
    PaymentIntentInfo,
    ProviderRefund,
)

logger = logging.getLogger(__name__)

RETRYABLE = (
    stripe.APIConnectionError,  # network error or timeout
    stripe.RateLimitError,
    stripe.APIError,  # 5xx at the provider
    stripe.AuthenticationError,  # bad key: fixed by configuration, then retried
    stripe.PermissionError,
)
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


def _translate(exc: stripe.StripeError, action: str) -> Exception:
    code = getattr(exc, "code", None) or ""
    logger.warning("Stripe %s failed: %s %s", action, type(exc).__name__, code)
    if isinstance(exc, RETRYABLE):
        return GatewayUnavailable(f"{type(exc).__name__} during {action}")
    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    return GatewayRejected(message[:300], code=code)


def _refund_from(obj) -> ProviderRefund:
    data = obj.to_dict()
    return ProviderRefund(
        id=data["id"],
        status=data.get("status") or "",
        amount_cents=int(data.get("amount") or 0),
        failure_reason=data.get("failure_reason") or "",
    )


class StripeGateway:
    """Card payments through Stripe (or localstripe at `api_base`)."""

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "",
        max_network_retries: int = 2,
        http_client=None,
    ) -> None:
        self.api_key = api_key
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls) -> StripeGateway:
        return cls(
            api_key=settings.STRIPE_API_KEY,
            api_base=settings.STRIPE_API_BASE,
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        )

    def create_payment_intent(
        self, *, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentIntentInfo:
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": amount_cents,
                    "currency": currency.lower(),
                    "payment_method_types": ["card"],
                    "metadata": metadata,
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translate(exc, "payment intent") from exc
        return PaymentIntentInfo(
            id=intent.id,
            client_secret=intent.client_secret,
            amount_cents=int(intent.amount),
            currency=intent.currency,
            status=intent.status,
        )

    def create_refund(
        self,
        *,
        payment_intent: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> ProviderRefund:
        try:
            refund = self.client.v1.refunds.create(
                params={
                    "payment_intent": payment_intent,
                    "amount": amount_cents,
                    "metadata": metadata,
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translate(exc, "refund") from exc
        return _refund_from(refund)

    def find_refund(self, *, payment_intent: str, refund_key: str) -> ProviderRefund | None:
        try:
            page = self.client.v1.refunds.list(
                params={"payment_intent": payment_intent, "limit": 100}
            )
            for refund in page.auto_paging_iter():
                metadata = refund.to_dict().get("metadata") or {}
                if metadata.get("refund_id") == refund_key:
                    return _refund_from(refund)
        except stripe.StripeError as exc:
            raise _translate(exc, "refund lookup") from exc
        return None

    # Development and tests only: what the customer's browser does with Stripe.js.

    def confirm_test_payment(self, *, payment_intent: str, payment_method: str) -> str:
        """Pay a PaymentIntent with one of Stripe's test payment methods (for example
        `pm_card_visa`); test keys only. Returns the PaymentIntent's status."""
        if self.api_key.startswith(LIVE_KEY_PREFIXES):
            raise GatewayRejected("Test payments need a test key, not a live one.", code="live")
        try:
            # Set, then confirm: localstripe refuses a payment method given to confirm.
            self.client.v1.payment_intents.update(
                payment_intent, params={"payment_method": payment_method}
            )
            intent = self.client.v1.payment_intents.confirm(payment_intent)
        except stripe.StripeError as exc:
            raise _translate(exc, "test payment") from exc
        return intent.status
