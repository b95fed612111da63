"""Delivery tariffs (R6) and the Omniva parcel-machine directory (R4)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from shop.money import MoneyField


class DeliveryTariffQuerySet(models.QuerySet):
    def in_force(self, at=None) -> DeliveryTariff | None:
        at = at or timezone.now()
        return self.filter(effective_from__lte=at).order_by("-effective_from", "-pk").first()


class DeliveryTariff(models.Model):
    """R6 (T5.2): the fee, charged when the goods total is at most `free_above`."""

    fee = MoneyField(_("delivery fee, EUR"), validators=[MinValueValidator(Decimal(0))])
    free_above = MoneyField(
        _("free delivery above, EUR"),
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Orders whose goods total is more than this amount ship free."),
    )
    effective_from = models.DateTimeField(_("effective from"), default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DeliveryTariffQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery tariff")
        verbose_name_plural = _("delivery tariffs")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return _("EUR %(fee)s up to EUR %(free)s, from %(date)s") % {
            "fee": self.fee,
            "free": self.free_above,
            "date": timezone.localtime(self.effective_from).date(),
        }


class ParcelMachine(models.Model):
    """A Latvian Omniva parcel machine; `zip` is Omniva's id (`offloadPostcode`)."""

    zip = models.CharField(_("Omniva ZIP"), max_length=10, unique=True)
    name = models.CharField(_("name"), max_length=200)
    city = models.CharField(_("city"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    county = models.CharField(_("county"), max_length=100, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("parcel machine")
        verbose_name_plural = _("parcel machines")
        ordering = ["city", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.zip})"
