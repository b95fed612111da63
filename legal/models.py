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
