"""Shared by the card payment tests (R11s)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from delivery.models import DeliveryTariff
from shop.models import VatRate
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    TermsVersionFactory,
)


def ensure_checkout_data() -> None:
    """What checkout needs: transactional tests flush the data migrations' rows too."""
    for category, rate, effective_from in [
        ("standard", Decimal("21.00"), date(2012, 7, 1)),
        ("reduced", Decimal("12.00"), date(2011, 1, 1)),
    ]:
        VatRate.objects.get_or_create(
            category=category, effective_from=effective_from, defaults={"rate": rate}
        )
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        )
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
