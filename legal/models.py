"""Terms and privacy-policy versions (T1.5, T1.7)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DocumentVersionQuerySet(models.QuerySet):
    def in_force(self, at=None):
        """The version in force: the latest one already effective."""
        at = at or timezone.now()
        return self.filter(effective_from__lte=at).order_by("-effective_from", "-pk").first()


class DocumentVersion(models.Model):
    version = models.CharField(_("version"), max_length=32, unique=True)
    effective_from = models.DateTimeField(_("effective from"))
    text_lv = models.TextField(_("text (Latvian)"))
    text_en = models.TextField(_("text (English)"))
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DocumentVersionQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return self.version


class TermsVersion(DocumentVersion):
    class Meta(DocumentVersion.Meta):
        verbose_name = _("terms of use version")
        verbose_name_plural = _("terms of use versions")


class PrivacyPolicyVersion(DocumentVersion):
    class Meta(DocumentVersion.Meta):
        verbose_name = _("privacy policy version")
        verbose_name_plural = _("privacy policy versions")


class ConsentPurpose(models.TextChoices):
    MARKETING_EMAIL = "marketing_email", _("Marketing emails")
    MARKETING_SMS = "marketing_sms", _("Marketing SMS")
    PROFILING = "profiling", _("Profiling for personalised offers")


class ConsentSource(models.TextChoices):
    CHECKOUT = "checkout", _("Checkout")
    API = "api", _("API")
    STAFF = "staff", _("Staff")
    UNSUBSCRIBE_LINK = "unsubscribe_link", _("Unsubscribe link")


class Consent(models.Model):
    """R31: consent per purpose, separate from ordering, with the policy version shown."""

    email = models.EmailField(_("email"))
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="consents"
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="consents"
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=ConsentPurpose.choices)
    given_at = models.DateTimeField(_("given at"), default=timezone.now)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    policy_version = models.ForeignKey(
        PrivacyPolicyVersion, null=True, blank=True, on_delete=models.PROTECT
    )
    source = models.CharField(_("source"), max_length=32, choices=ConsentSource.choices)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-given_at"]
        indexes = [models.Index(fields=["email", "purpose"])]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} ({self.given_at:%Y-%m-%d})"

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


class Recipient(models.TextChoices):
    OMNIVA = "omniva", _("Omniva (courier, processor)")
    STRIPE = "stripe", _("Stripe (card payments)")
    BANK = "bank", _("Bank (SEPA refunds)")
    AUTHORITY = "authority", _("Public authority")


class Disclosure(models.Model):
    """R27: every disclosure of personal data to a third party."""

    recipient = models.CharField(_("recipient"), max_length=32, choices=Recipient.choices)
    categories = models.JSONField(_("data categories"), default=list)
    purpose = models.CharField(_("purpose"), max_length=200)
    disclosed_at = models.DateTimeField(_("disclosed at"), default=timezone.now)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="disclosures",
    )
    reference = models.CharField(_("reference"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("disclosure")
        verbose_name_plural = _("disclosures")
        ordering = ["-disclosed_at"]

    def __str__(self) -> str:
        return f"{self.get_recipient_display()} {self.disclosed_at:%Y-%m-%d}"
