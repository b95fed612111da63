"""Reads of the shared kernel."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from shop import reference
from shop.calendar import LatvianCalendar, riga_date
from shop.models import ExtraHoliday, Product, VatRate

reference.watch(ExtraHoliday, VatRate)


def latvian_calendar() -> LatvianCalendar:
    """The calendar with the admin's extra holidays (shop.reference caches it)."""
    return reference.cached(
        "calendar", lambda: LatvianCalendar(ExtraHoliday.objects.values_list("date", flat=True))
    )


def today_in_riga() -> date:
    return riga_date(timezone.now())


def vat_rates_in_force(on: date | None = None) -> dict[str, Decimal]:
    """R0.1: {category: rate} in force on a day (shop.reference caches the few rows)."""
    on = on or today_in_riga()
    rates: dict[str, Decimal] = {}
    for category, rate, effective_from in reference.cached("vat-rates", _vat_rows):
        if effective_from <= on:
            rates[category] = rate
    return rates


def _vat_rows() -> list[tuple[str, Decimal, date]]:
    """Ordered like `VatRate.objects.in_force`: by category, then effective date."""
    return list(
        VatRate.objects.order_by("category", "effective_from").values_list(
            "category", "rate", "effective_from"
        )
    )


def active_products() -> QuerySet[Product]:
    return Product.objects.filter(active=True)
