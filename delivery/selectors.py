"""Reads of the delivery app."""

from __future__ import annotations

from datetime import datetime

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from delivery.models import DeliveryTariff, ParcelMachine
from shop import reference

reference.watch(DeliveryTariff, ParcelMachine)


def tariff_in_force(at: datetime | None = None) -> DeliveryTariff | None:
    """R6: the tariff in force at `at` (shop.reference caches the few rows)."""
    tariffs = reference.cached(
        "tariffs", lambda: list(DeliveryTariff.objects.order_by("-effective_from", "-pk"))
    )
    return reference.in_force(tariffs, at)


def active_parcel_machine(zip_code: str) -> ParcelMachine | None:
    """R4: an active Latvian parcel machine by its Omniva ZIP, or None."""
    machines = reference.cached(
        "parcel-machines", lambda: {m.zip: m for m in ParcelMachine.objects.filter(active=True)}
    )
    return machines.get(zip_code)


def active_parcel_machines() -> QuerySet[ParcelMachine]:
    """R4: the Latvian Omniva parcel machines a customer may choose (the directory holds
    only Latvian ones: `services.load_parcel_machines` keeps nothing else)."""
    return ParcelMachine.objects.filter(active=True).order_by("city", "name", "zip")


def _orders_model():
    # orders depends on delivery; reach its Order through the reverse relation instead of
    # importing it.
    return DeliveryTariff._meta.get_field("order").related_model


def tariffs_with_status(now: datetime | None = None) -> QuerySet[DeliveryTariff]:
    """Tariffs annotated with `in_force` (the one new orders get now) and `in_use` (an
    order was placed under it, so it is history and must not change, R6)."""
    now = now or timezone.now()
    current = (
        DeliveryTariff.objects.filter(effective_from__lte=now)
        .order_by("-effective_from", "-pk")
        .values("pk")[:1]
    )
    return DeliveryTariff.objects.annotate(
        in_use=Exists(_orders_model().objects.filter(tariff=OuterRef("pk"))),
        in_force=ExpressionWrapper(Q(pk=Subquery(current)), output_field=BooleanField()),
    )


def tariff_in_use(tariff: DeliveryTariff) -> bool:
    if tariff.pk is None:
        return False
    annotated = getattr(tariff, "in_use", None)
    if annotated is not None:
        return bool(annotated)
    return _orders_model().objects.filter(tariff=tariff).exists()
