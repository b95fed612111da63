"""Double opt-in for consents (R31): the link that lets the owner of an address confirm a
consent given for it. Below both `consents` and `ledger` (checkout asks through the
ledger's `order_placed`), so neither imports the other for it."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from shop import tokens
from shop.mail import queue_email

CONFIRM_LINK = "consent-confirm"
CONFIRM_MAX_AGE = 30 * 24 * 3600  # seconds


def ask_confirmation(*, email: str, token: str) -> None:
    """Email the confirmation link to the address the consent was given for."""
    path = reverse("legal-web:confirm-consents")
    queue_email(
        to=email,
        template="consent_confirm",
        context={"confirm_url": f"{settings.SITE_URL}{path}?token={token}", "shop": settings.SHOP},
    )


def ask_confirmation_for_order(*, order) -> None:
    """After checkout, in its transaction: the consents given with the order wait for the
    link emailed to the order's address. One email, no query."""
    ask_confirmation(email=order.email, token=tokens.sign(CONFIRM_LINK, f"o{order.pk}"))
