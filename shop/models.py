"""Catalogue (products, VAT rates), the working-day override table and the outbox."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from shop.money import MoneyField


class VatCategory(models.TextChoices):
    STANDARD = "standard", _("Standard rate")
    REDUCED = "reduced", _("Reduced rate")
    SUPER_REDUCED = "super_reduced", _("Super-reduced rate")


class VatRateQuerySet(models.QuerySet):
    def in_force(self, on: date) -> dict[str, Decimal]:
        """{category: rate} in force on a day: the latest effective row per category."""
        rates: dict[str, Decimal] = {}
        for row in self.filter(effective_from__lte=on).order_by("category", "effective_from"):
            rates[row.category] = row.rate
        return rates


class VatRate(models.Model):
    """R0.1: VAT rates are data with effective dates (21 %, 12 %, 5 % in Latvia)."""

    category = models.CharField(_("category"), max_length=20, choices=VatCategory.choices)
    rate = models.DecimalField(
        _("rate, %"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    effective_from = models.DateField(_("effective from"))

    objects = VatRateQuerySet.as_manager()

    class Meta:
        verbose_name = _("VAT rate")
        verbose_name_plural = _("VAT rates")
        ordering = ["category", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "effective_from"], name="vat_rate_once_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} {self.rate}% ({self.effective_from})"


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name_lv = models.CharField(_("name (Latvian)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    price = MoneyField(_("price incl. VAT, EUR"), validators=[MinValueValidator(Decimal("0.01"))])
    vat_category = models.CharField(
        _("VAT category"), max_length=20, choices=VatCategory.choices, default=VatCategory.STANDARD
    )
    stock = models.PositiveIntegerField(_("stock"), default=0)
    sealed_hygiene = models.BooleanField(
        _("sealed hygiene product"),
        default=False,
        help_text=_("Cannot be returned once unsealed after delivery (R22, CRD Art 16(e))."),
    )
    warranty_months = models.PositiveSmallIntegerField(
        _("commercial warranty, months"), null=True, blank=True
    )
    # prece is feminine in Latvian (a parcel machine is masculine).
    active = models.BooleanField(pgettext_lazy("product", "active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name_lv}"

    @property
    def name(self) -> str:
        """The name in the active language (Latvian unless English is asked for)."""
        if (get_language() or "lv").startswith("en") and self.name_en:
            return self.name_en
        return self.name_lv

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


class ExtraHoliday(models.Model):
    """R0.3: a one-off day off the `holidays` package does not know yet."""

    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("extra public holiday")
        verbose_name_plural = _("extra public holidays")
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class OutboxMessage(models.Model):
    """A side effect that must not be lost, written in the same transaction as the change.

    A relay delivers it after commit (and a beat job retries what was not delivered);
    `delivered_at` is set in the same transaction as the delivery, under a row lock, so a
    message is delivered once.
    """

    topic = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["available_at"],
                name="outbox_pending_idx",
                condition=Q(delivered_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.topic}"
