"""Reads of the shared kernel."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from shop.calendar import LatvianCalendar, riga_date
from shop.models import ExtraHoliday, Product, VatRate


def latvian_calendar() -> LatvianCalendar:
    """The calendar with the admin's extra holidays (one small query)."""
    return LatvianCalendar(ExtraHoliday.objects.values_list("date", flat=True))


def today_in_riga() -> date:
    return riga_date(timezone.now())


def vat_rates_in_force(on: date | None = None) -> dict[str, Decimal]:
    return VatRate.objects.in_force(on or today_in_riga())


def active_products() -> QuerySet[Product]:
    return Product.objects.filter(active=True)
