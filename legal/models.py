"""Terms and privacy-policy versions (T1.5, T1.7), consents (R31), the disclosure log (R27),
the personal-data ledger and erasure records (R26, R29), legal holds (R28) and
data-subject requests (R30)."""

from __future__ import annotations

from django.conf import settings
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
    OBJECTION = "objection", _("Objection (GDPR Art 21)")
    ERASURE_REQUEST = "erasure_request", _("Erasure request (GDPR Art 17)")


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
    # R31 (double opt-in): a consent counts once the address owner confirmed it, by the
    # emailed link or by giving it under a proven email; until then it is pending.
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    policy_version = models.ForeignKey(
        PrivacyPolicyVersion, null=True, blank=True, on_delete=models.PROTECT
    )
    source = models.CharField(_("source"), max_length=32, choices=ConsentSource.choices)
    text_version = models.CharField(
        _("consent text version"),
        max_length=64,
        blank=True,
        help_text=_("The wording the customer agreed to; the privacy policy version is above."),
    )
    withdrawn_via = models.CharField(
        _("withdrawn via"), max_length=32, choices=ConsentSource.choices, blank=True
    )
    # R28: kept while the consent stands; withdrawn: erased within 3 working days (IP15).
    keep_until = models.DateField(_("kept until"), null=True, blank=True)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-given_at"]
        indexes = [
            models.Index(fields=["email", "purpose"]),
            models.Index(
                fields=["keep_until"],
                name="consent_sweep_idx",
                condition=models.Q(erased_at__isnull=True, keep_until__isnull=False),
            ),
        ]

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
    withheld_from_subject = models.BooleanField(
        _("withheld from the customer"),
        default=False,
        help_text=_(
            "IP38: a disclosure the law forbids telling the customer about (for example to "
            "an authority conducting criminal proceedings)."
        ),
    )

    class Meta:
        verbose_name = _("disclosure")
        verbose_name_plural = _("disclosures")
        ordering = ["-disclosed_at"]

    def __str__(self) -> str:
        return f"{self.get_recipient_display()} {self.disclosed_at:%Y-%m-%d}"


# --- The personal-data ledger, retention and erasure (R26, R28, R29) -------------------------


class PersonalDataRecord(models.Model):
    """R26: per order and category of personal data, why it is held, on which basis and
    until when; the retention sweep (R29) finds the rows past their date by `keep_until`.

    Recomputed by `legal.services.ledger` whenever the facts change (placed, delivered,
    cancelled, a claim opened or closed, a consent withdrawn). The fields a category
    covers come from the registry (`legal.registry`), not from this row."""

    # Indexed by the unique (order, category) constraint below.
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="personal_data", db_index=False
    )
    category = models.CharField(_("category"), max_length=32)
    purpose = models.CharField(_("purpose"), max_length=300)
    basis = models.CharField(_("legal basis"), max_length=1)
    keep_until = models.DateField(
        _("kept until"),
        null=True,
        blank=True,
        help_text=_("Empty while the order is performed or a legal hold is open."),
    )
    hold_note = models.CharField(_("legal hold"), max_length=300, blank=True)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)
    restricted_at = models.DateTimeField(
        _("processing restricted"),
        null=True,
        blank=True,
        help_text=_("GDPR Art 18: only stored, no other processing (no marketing)."),
    )
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("personal data of an order")
        verbose_name_plural = _("personal-data ledger")
        ordering = ["order_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "category"], name="ledger_once_per_category")
        ]
        indexes = [
            models.Index(
                fields=["keep_until", "id"],
                name="ledger_sweep_idx",
                condition=models.Q(erased_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.category}"

    @property
    def category_info(self):
        from legal.policy import CATEGORIES

        return CATEGORIES.get(self.category)


class ErasureReason(models.TextChoices):
    RETENTION = "retention", _("Retention period over (R29)")
    REQUEST = "request", _("Erasure request (GDPR Art 17)")
    CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn (IP15)")


class ErasureRecord(models.Model):
    """R29: what was erased, when and why, without the erased values."""

    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="erasures",
        db_index=False,  # written 100,000s at a time, looked up rarely (the admin)
    )
    category = models.CharField(_("category"), max_length=32)
    reason = models.CharField(_("reason"), max_length=32, choices=ErasureReason.choices)
    erased_at = models.DateTimeField(_("erased at"), default=timezone.now)
    fields = models.JSONField(_("fields"), default=list)
    rows = models.PositiveIntegerField(_("rows"), default=0)
    note = models.CharField(_("note"), max_length=200, blank=True)
    request = models.ForeignKey(
        "DataSubjectRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="erasures",
        db_index=False,  # rare lookups; every index costs the sweep a write per row
    )

    class Meta:
        verbose_name = _("erasure record")
        verbose_name_plural = _("erasure records")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.category} {self.erased_at:%Y-%m-%d}"


class HoldReason(models.TextChoices):
    DISPUTE = "dispute", _("Dispute (court, PTAC, card chargeback)")
    AUTHORITY = "authority", _("Request of a public authority")
    CLAIM = "claim", _("Claim handled outside the system")
    OTHER = "other", _("Other legal claim")


class LegalHold(models.Model):
    """R28: a hold placed by staff; it postpones erasure until 3 years after it closes.

    Conformity claims and card disputes register their own holds through
    `legal.holds.register`."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="legal_holds")
    reason = models.CharField(_("reason"), max_length=16, choices=HoldReason.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} ({self.opened_at:%Y-%m-%d})"


# --- Data-subject requests (R30) ---------------------------------------------------------------


class RequestKind(models.TextChoices):
    ACCESS = "access", _("Access and portability (Art 15, 20)")
    ERASURE = "erasure", _("Erasure (Art 17)")
    RESTRICTION = "restriction", _("Restriction (Art 18)")
    OBJECTION = "objection", _("Objection to profiling and direct marketing (Art 21)")
    RECTIFICATION = "rectification", _("Rectification of contact data (Art 16)")


class RequestStatus(models.TextChoices):
    RECEIVED = "received", _("Received, waiting for staff")
    ANSWERED = "answered", _("Answered")
    REFUSED = "refused", _("Refused")


class RequestChannel(models.TextChoices):
    API = "api", _("API")
    STAFF = "staff", _("Entered by staff")


class DataSubjectRequest(models.Model):
    """R30: a request, logged with its received date and its one-month answer deadline."""

    kind = models.CharField(_("type"), max_length=16, choices=RequestKind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=RequestStatus.choices, default=RequestStatus.RECEIVED
    )
    channel = models.CharField(
        _("channel"), max_length=16, choices=RequestChannel.choices, default=RequestChannel.API
    )
    email = models.EmailField(_("email of the person"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="data_subject_requests",
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    answer_due = models.DateField(_("answer due"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    details = models.JSONField(_("request"), default=dict, blank=True)
    answer = models.JSONField(_("answer"), default=dict, blank=True)
    lifted_at = models.DateTimeField(
        _("restriction lifted"),
        null=True,
        blank=True,
        help_text=_("For a restriction: when it ended."),
    )
    keep_until = models.DateField(_("kept until"), null=True, blank=True)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")
        ordering = ["answer_due", "pk"]
        indexes = [
            models.Index(fields=["status", "answer_due"], name="dsr_queue_idx"),
            models.Index(fields=["email", "kind"], name="dsr_person_idx"),
            models.Index(
                fields=["keep_until"],
                name="dsr_sweep_idx",
                condition=models.Q(erased_at__isnull=True, keep_until__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_overdue(self) -> bool:
        from shop.selectors import today_in_riga

        return self.status == RequestStatus.RECEIVED and self.answer_due < today_in_riga()


# --- Customer accounts and one-time links (R30: identity) ----------------------------------------


class CustomerAccount(models.Model):
    """A customer's login (auth.User, username = email) and whether the email is proven."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_account"
    )
    email_verified_at = models.DateTimeField(_("email verified at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("customer account")
        verbose_name_plural = _("customer accounts")

    def __str__(self) -> str:
        return f"account {self.user_id}"


class UsedLink(models.Model):
    """A one-time link already opened: only a hash of its nonce, no personal data."""

    nonce_hash = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("used one-time link")
        verbose_name_plural = _("used one-time links")

    def __str__(self) -> str:
        return f"link used {self.used_at:%Y-%m-%d %H:%M}"


class SweepCursor(models.Model):
    """Where a resumable sweep over an append-only table got to (for example the outbox)."""

    name = models.CharField(max_length=64, unique=True)
    position = models.BigIntegerField(default=0)
    pending = models.JSONField(default=list, blank=True)  # ids passed over, to look at again
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"
