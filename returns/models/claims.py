"""Conformity claims and their lines (R23-R25; T6; Directive 2019/771; PTAL).

State lives in a protected FSM field: nobody assigns `Claim.status`; the transitions below
check conditions and change fields only, and `returns.claims.services` opens the
transactions, takes the locks, writes the decision log and schedules the emails.

    submitted -> under_review -> repair | replacement | price_reduction | termination
    repair <-> replacement (the other one when the first is impossible or failed)
    repair | replacement -> price_reduction | termination (R24: only with a recorded
        reason that repair and replacement are impossible, disproportionate or failed)
    repair | replacement | price_reduction | termination -> resolved
    submitted | under_review | repair | replacement -> rejected
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from simple_history.models import HistoricalRecords

from shop.money import ZERO, MoneyField

__all__ = [
    "CLOSED_CLAIM_STATUSES",
    "OPEN_CLAIM_STATUSES",
    "UNANSWERED_CLAIM_STATUSES",
    "Claim",
    "ClaimChannel",
    "ClaimDecision",
    "ClaimLine",
    "ClaimPhoto",
    "ClaimStatus",
    "DecisionKind",
    "ObstacleKind",
    "Remedy",
]


class ClaimStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    UNDER_REVIEW = "under_review", _("Under review")
    REPAIR = "repair", _("Repair")
    REPLACEMENT = "replacement", _("Replacement")
    PRICE_REDUCTION = "price_reduction", _("Price reduction")
    TERMINATION = "termination", _("Termination with refund")
    RESOLVED = "resolved", _("Resolved")
    REJECTED = "rejected", _("Rejected")


class Remedy(models.TextChoices):
    """R24 (T6.5): what the customer may ask for."""

    REPAIR = "repair", _("Repair")
    REPLACEMENT = "replacement", _("Replacement")
    PRICE_REDUCTION = "price_reduction", _("Price reduction")
    TERMINATION = "termination", _("Termination of the contract with refund")


class ClaimChannel(models.TextChoices):
    """R25 (T6.9): claims may be made orally or in writing; staff enter those."""

    API = "api", _("Online (API)")
    ORAL = "oral", _("Orally (phone or in person), entered by staff")
    PAPER = "paper", _("In writing (letter or email), entered by staff")


class ObstacleKind(models.TextChoices):
    """R24 (T6.6, T6.7): why repair and replacement are not (or no longer) the remedy."""

    IMPOSSIBLE = "impossible", _("Repair and replacement are impossible")
    DISPROPORTIONATE = "disproportionate", _("Repair and replacement are disproportionate")
    FAILED = "failed", _("Repair or replacement has failed")


class DecisionKind(models.TextChoices):
    RECEIVED = "received", _("Claim received")
    REVIEW = "review", _("Review started")
    REPAIR = "repair", _("Repair decided")
    REPLACEMENT = "replacement", _("Replacement decided")
    OBSTACLE = "obstacle", _("Repair and replacement excluded")
    MINOR_DEFECT = "minor_defect", _("Minor non-conformity assessed")
    PRICE_REDUCTION = "price_reduction", _("Price reduction decided")
    TERMINATION = "termination", _("Termination decided")
    RESOLVED = "resolved", _("Resolved")
    REJECTED = "rejected", _("Rejected")


UNANSWERED_CLAIM_STATUSES = [ClaimStatus.SUBMITTED, ClaimStatus.UNDER_REVIEW]
OPEN_CLAIM_STATUSES = [
    *UNANSWERED_CLAIM_STATUSES,
    ClaimStatus.REPAIR,
    ClaimStatus.REPLACEMENT,
    ClaimStatus.PRICE_REDUCTION,
    ClaimStatus.TERMINATION,
]
CLOSED_CLAIM_STATUSES = [ClaimStatus.RESOLVED, ClaimStatus.REJECTED]
PRIMARY_REMEDY_STATUSES = [ClaimStatus.REPAIR, ClaimStatus.REPLACEMENT]
DECIDABLE_STATUSES = [*UNANSWERED_CLAIM_STATUSES, *PRIMARY_REMEDY_STATUSES]


class Claim(ConcurrentTransitionMixin, models.Model):
    """A conformity claim about goods of one order (R23-R25)."""

    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="claims", verbose_name=_("order")
    )
    status = FSMField(
        _("status"), default=ClaimStatus.SUBMITTED, choices=ClaimStatus.choices, protected=True
    )
    channel = models.CharField(
        _("channel"), max_length=8, choices=ClaimChannel.choices, default=ClaimChannel.API
    )
    remedy_requested = models.CharField(
        _("remedy asked for"), max_length=16, choices=Remedy.choices
    )
    description = models.TextField(_("description of the defect"), max_length=5000)
    discovered_on = models.DateField(_("defect discovered on"))
    received_at = models.DateTimeField(_("received at"))
    # R25: answered within 15 working days of the claim; overdue claims are flagged.
    answer_deadline = models.DateTimeField(_("answer deadline"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    overdue_flagged_at = models.DateTimeField(_("flagged overdue"), null=True, blank=True)
    # R23: notice more than 2 months after discovery is flagged, never refused.
    late_notice = models.BooleanField(_("late notice"), default=False)
    # R23 (T6.4): after the 2 years, a claim under the product's commercial warranty.
    is_warranty_claim = models.BooleanField(_("commercial warranty claim"), default=False)
    # R24 (T6.8): set by staff; no termination for a minor non-conformity.
    minor_defect = models.BooleanField(_("minor non-conformity"), default=False)
    # R24 (T6.6, T6.7): why repair and replacement are impossible, disproportionate or failed.
    obstacle = models.CharField(
        _("repair and replacement excluded because"),
        max_length=16,
        choices=ObstacleKind.choices,
        blank=True,
    )
    obstacle_reason = models.TextField(_("staff reasons"), blank=True)
    # Where refunds go (optional; otherwise back to the account the money came from).
    refund_iban = models.CharField(_("IBAN for refunds"), max_length=34, blank=True)
    refund_account_holder = models.CharField(_("account holder"), max_length=140, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("entered by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("conformity claim")
        verbose_name_plural = _("conformity claims")
        ordering = ["answer_deadline", "pk"]
        permissions = [("decide_claim", _("Can decide conformity claims"))]
        indexes = [
            # run_deadlines (R25): only unanswered, not yet flagged claims are indexed.
            models.Index(
                fields=["answer_deadline"],
                name="claim_unanswered_deadline_idx",
                condition=Q(
                    status__in=["submitted", "under_review"], overdue_flagged_at__isnull=True
                ),
            ),
            # R28: the legal hold of an order with an open claim.
            models.Index(
                fields=["order"],
                name="claim_open_order_idx",
                condition=Q(
                    status__in=[
                        "submitted",
                        "under_review",
                        "repair",
                        "replacement",
                        "price_reduction",
                        "termination",
                    ]
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CLAIM_STATUSES

    @property
    def is_answered(self) -> bool:
        return self.status not in UNANSWERED_CLAIM_STATUSES

    def is_overdue(self, now=None) -> bool:
        """R25: not answered by the end of the answer deadline."""
        return not self.is_answered and (now or timezone.now()) > self.answer_deadline

    def primary_remedy_excluded(self) -> bool:
        """R24 (T6.7): staff recorded why repair and replacement are not the remedy."""
        return bool(self.obstacle and self.obstacle_reason.strip())

    def not_minor(self) -> bool:
        return not self.minor_defect

    def _answer(self, at) -> None:
        self.answered_at = self.answered_at or at

    # Transitions: pure, no IO (STYLE.md).

    @transition(field=status, source=ClaimStatus.SUBMITTED, target=ClaimStatus.UNDER_REVIEW)
    def start_review(self, *, at) -> None:
        pass

    @transition(
        field=status,
        source=[*UNANSWERED_CLAIM_STATUSES, ClaimStatus.REPLACEMENT],
        target=ClaimStatus.REPAIR,
    )
    def decide_repair(self, *, at) -> None:
        self._answer(at)

    @transition(
        field=status,
        source=[*UNANSWERED_CLAIM_STATUSES, ClaimStatus.REPAIR],
        target=ClaimStatus.REPLACEMENT,
    )
    def decide_replacement(self, *, at) -> None:
        self._answer(at)

    @transition(
        field=status,
        source=DECIDABLE_STATUSES,
        target=ClaimStatus.PRICE_REDUCTION,
        conditions=[primary_remedy_excluded],
    )
    def decide_price_reduction(self, *, at) -> None:
        self._answer(at)

    @transition(
        field=status,
        source=DECIDABLE_STATUSES,
        target=ClaimStatus.TERMINATION,
        conditions=[primary_remedy_excluded, not_minor],
    )
    def decide_termination(self, *, at) -> None:
        self._answer(at)

    @transition(
        field=status,
        source=[
            ClaimStatus.REPAIR,
            ClaimStatus.REPLACEMENT,
            ClaimStatus.PRICE_REDUCTION,
            ClaimStatus.TERMINATION,
        ],
        target=ClaimStatus.RESOLVED,
    )
    def resolve(self, *, at) -> None:
        self.closed_at = at

    @transition(field=status, source=DECIDABLE_STATUSES, target=ClaimStatus.REJECTED)
    def reject(self, *, at) -> None:
        self._answer(at)
        self.closed_at = at


class ClaimLine(models.Model):
    """The goods a claim is about: a quantity of an order line, and what it was paid back."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "orders.OrderLine",
        on_delete=models.PROTECT,
        related_name="claim_lines",
        verbose_name=_("order line"),
    )
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    # R24 (T6.7): the agreed allowance for use kept back on termination (<= the price).
    allowance = MoneyField(_("allowance for use"), default=ZERO)
    # R24: money paid back for these goods (price reduction, or termination less allowance).
    refund_amount = MoneyField(_("paid back"), default=ZERO)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("claim line")
        verbose_name_plural = _("claim lines")
        ordering = ["claim", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="claim_line_quantity_min"),
            models.CheckConstraint(condition=Q(allowance__gte=0), name="claim_line_allowance_min"),
            models.CheckConstraint(condition=Q(refund_amount__gte=0), name="claim_line_refund_min"),
            models.UniqueConstraint(fields=["claim", "order_line"], name="claim_line_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.order_line.sku} × {self.quantity}"


def claim_photo_path(instance: ClaimPhoto, filename: str) -> str:
    """Never the customer's file name: a random name with the sniffed type's extension."""
    return f"claims/{timezone.now():%Y/%m}/{filename}"


class ClaimPhoto(models.Model):
    """Evidence attached to a claim: JPEG, PNG or PDF, type checked by content sniffing."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="photos")
    file = models.FileField(_("file"), upload_to=claim_photo_path, max_length=200)
    content_type = models.CharField(_("type"), max_length=40)
    size = models.PositiveIntegerField(_("size, bytes"))
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("claim photo")
        verbose_name_plural = _("claim photos")
        ordering = ["claim", "pk"]

    def __str__(self) -> str:
        return f"{self.content_type}, {self.size} B"


class ClaimDecision(models.Model):
    """Every decision on a claim, with who, when and why (R24, R25). Append-only."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(_("decision"), max_length=16, choices=DecisionKind.choices)
    from_status = models.CharField(_("from"), max_length=16, blank=True)
    to_status = models.CharField(_("to"), max_length=16, choices=ClaimStatus.choices)
    reason = models.TextField(_("why"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("by"),
    )
    decided_at = models.DateTimeField(_("at"), default=timezone.now)
    amount = MoneyField(_("amount"), null=True, blank=True)
    refund = models.ForeignKey(
        "orders.Refund",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="claim_decisions",
        verbose_name=_("refund"),
    )
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("claim decision")
        verbose_name_plural = _("claim decisions")
        ordering = ["claim", "decided_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.decided_at:%Y-%m-%d %H:%M})"
