"""Withdrawals and their lines (R15-R22; T7; CRD Art 9-16, Art 11a).

State lives in a protected FSM field: nobody assigns `Withdrawal.status`; the transitions
below only check and change fields, and `returns.withdrawals.services` opens the
transactions, takes the locks (the order's row first), talks to the refund service and
schedules the emails.

    received -> goods_in_transit   proof of dispatch uploaded (R20, R21)
    received | goods_in_transit -> goods_received   return_delivered, or staff (R20)
    goods_received -> inspected     every line inspected (R22)
    inspected -> refunded | rejected   the refund released (or nothing left to refund)
    received -> refunded            withdrawn before dispatch: nothing to send back (R16)
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
    "OPEN_WITHDRAWAL_STATUSES",
    "InspectionOutcome",
    "RejectionGround",
    "Withdrawal",
    "WithdrawalChannel",
    "WithdrawalLine",
    "WithdrawalStatus",
]


class WithdrawalStatus(models.TextChoices):
    RECEIVED = "received", _("Statement received")
    GOODS_IN_TRANSIT = "goods_in_transit", _("Goods on their way back")
    GOODS_RECEIVED = "goods_received", _("Goods received")
    INSPECTED = "inspected", _("Goods inspected")
    REFUNDED = "refunded", _("Refunded")
    REJECTED = "rejected", _("Nothing to refund")


OPEN_WITHDRAWAL_STATUSES = [
    WithdrawalStatus.RECEIVED,
    WithdrawalStatus.GOODS_IN_TRANSIT,
    WithdrawalStatus.GOODS_RECEIVED,
    WithdrawalStatus.INSPECTED,
]


class WithdrawalChannel(models.TextChoices):
    """R17: how the statement reached the shop."""

    API = "api", _("API")
    WEB = "web", _("Withdrawal button (web page)")
    STAFF = "staff", _("Email or phone, entered by staff")


class InspectionOutcome(models.TextChoices):
    """R22 (T7.9-T7.11, CRD Art 14(2), 16(e))."""

    ACCEPTED = "accepted", _("Accepted")
    ACCEPTED_WITH_DEDUCTION = "accepted_with_deduction", _("Accepted with a deduction")
    REJECTED = "rejected", _("Rejected")


class RejectionGround(models.TextChoices):
    """R22: why a returned line is not refunded."""

    NOT_RETURNED = "not_returned", _("Not returned")
    INCOMPLETE = "incomplete", _("Incomplete")
    HYGIENE_UNSEALED = "hygiene_unsealed", _("Sealed hygiene product unsealed after delivery")


def proof_upload_path(instance: Withdrawal, filename: str) -> str:
    """Never the customer's file name: the service passes a random one with the sniffed
    type's extension."""
    return f"withdrawals/{timezone.now():%Y/%m}/{filename}"


class Withdrawal(ConcurrentTransitionMixin, models.Model):
    """A withdrawal statement (R17) and what follows from it: return, inspection, refund."""

    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        related_name="withdrawals",
        verbose_name=_("order"),
    )
    status = FSMField(
        _("status"),
        default=WithdrawalStatus.RECEIVED,
        choices=WithdrawalStatus.choices,
        protected=True,
    )
    channel = models.CharField(_("channel"), max_length=8, choices=WithdrawalChannel.choices)
    # R16, R19: the exact moment the statement was received (staff: as told by the customer's
    # email or call), and when it was recorded here.
    received_at = models.DateTimeField(_("received at"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("entered by"),
    )
    staff_note = models.CharField(_("staff note"), max_length=300, blank=True)
    # R17: where the refund goes; the reason is optional and never required.
    iban = models.CharField(_("IBAN"), max_length=34)
    account_holder = models.CharField(_("account holder"), max_length=140)
    reason = models.TextField(_("reason (optional)"), max_length=2000, blank=True)
    # A double submit (same content within a short window) creates one withdrawal.
    fingerprint = models.CharField(max_length=64, editable=False)

    # Deadlines, fixed when the statement is received.
    period_end = models.DateTimeField(_("withdrawal period ended"), null=True, blank=True)
    before_dispatch = models.BooleanField(
        _("withdrawn before dispatch"),
        default=False,
        help_text=_("The goods never left: nothing to send back, refunded at once (R16)."),
    )
    return_deadline = models.DateTimeField(_("return deadline"), null=True, blank=True)
    refund_due_date = models.DateField(_("refund due"))
    return_code = models.CharField(_("Omniva return code"), max_length=40, blank=True)

    # R21: the money.
    includes_delivery_fee = models.BooleanField(_("delivery fee refunded"), default=False)
    refund_amount = MoneyField(_("refund amount"), default=ZERO)
    refund = models.OneToOneField(
        "orders.Refund",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="withdrawal",
        verbose_name=_("refund"),
    )

    # R20: the goods coming back.
    proof_of_dispatch = models.FileField(
        _("proof of dispatch"), upload_to=proof_upload_path, max_length=200, blank=True
    )
    proof_content_type = models.CharField(_("proof type"), max_length=40, blank=True)
    proof_uploaded_at = models.DateTimeField(_("proof uploaded at"), null=True, blank=True)
    goods_received_at = models.DateTimeField(_("goods received at"), null=True, blank=True)
    returned_late = models.BooleanField(
        _("returned late"),
        default=False,
        help_text=_("Sent back more than 14 days after the statement (T7.10): staff decide."),
    )
    # R22: inspection.
    inspected_at = models.DateTimeField(_("inspected at"), null=True, blank=True)
    inspected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("inspected by"),
    )

    history = HistoricalRecords(excluded_fields=["iban", "fingerprint"])

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        ordering = ["-received_at", "-pk"]
        permissions = [
            ("record_withdrawal", _("Can enter a withdrawal received by email or phone")),
            ("receive_returned_goods", _("Can record returned goods as received")),
            ("inspect_withdrawal", _("Can inspect returned goods")),
        ]
        indexes = [
            models.Index(
                fields=["order"],
                name="withdrawal_open_order_idx",
                condition=Q(
                    status__in=["received", "goods_in_transit", "goods_received", "inspected"]
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_WITHDRAWAL_STATUSES

    @property
    def awaiting_goods(self) -> bool:
        return self.status in (WithdrawalStatus.RECEIVED, WithdrawalStatus.GOODS_IN_TRANSIT)

    # Transitions: pure, no IO (STYLE.md).

    @transition(
        field=status, source=WithdrawalStatus.RECEIVED, target=WithdrawalStatus.GOODS_IN_TRANSIT
    )
    def goods_sent(self, *, at) -> None:
        """R20: the customer proved the goods were sent back."""

    @transition(
        field=status,
        source=[WithdrawalStatus.RECEIVED, WithdrawalStatus.GOODS_IN_TRANSIT],
        target=WithdrawalStatus.GOODS_RECEIVED,
    )
    def goods_arrived(self, *, at, late: bool) -> None:
        self.goods_received_at = at
        self.returned_late = late

    @transition(
        field=status, source=WithdrawalStatus.GOODS_RECEIVED, target=WithdrawalStatus.INSPECTED
    )
    def complete_inspection(self, *, at, by) -> None:
        self.inspected_at = at
        self.inspected_by = by

    @transition(
        field=status,
        source=[WithdrawalStatus.RECEIVED, WithdrawalStatus.INSPECTED],
        target=WithdrawalStatus.REFUNDED,
    )
    def mark_refunded(self) -> None:
        """The refund is released for payment (its own state shows the rest)."""

    @transition(field=status, source=WithdrawalStatus.INSPECTED, target=WithdrawalStatus.REJECTED)
    def reject(self) -> None:
        """Every line rejected at inspection (R22): nothing to refund."""


class WithdrawalLine(models.Model):
    """A withdrawn quantity of an order line and its inspection (R17, R22)."""

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "orders.OrderLine",
        on_delete=models.PROTECT,
        related_name="withdrawal_lines",
        verbose_name=_("order line"),
    )
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    unit_price = MoneyField(_("unit price incl. VAT"))
    outcome = models.CharField(
        _("inspection"), max_length=24, choices=InspectionOutcome.choices, blank=True
    )
    deduction = MoneyField(_("deduction"), default=ZERO)
    rejection_ground = models.CharField(
        _("rejected because"), max_length=20, choices=RejectionGround.choices, blank=True
    )
    inspection_note = models.CharField(_("inspection reason"), max_length=300, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("withdrawn line")
        verbose_name_plural = _("withdrawn lines")
        ordering = ["withdrawal", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="withdrawal_line_quantity_min"
            ),
            models.CheckConstraint(
                condition=Q(deduction__gte=0), name="withdrawal_line_deduction_min"
            ),
            models.UniqueConstraint(
                fields=["withdrawal", "order_line"], name="withdrawal_line_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_line.sku} × {self.quantity}"

    @property
    def price(self):
        from shop.money import to_money

        return to_money(self.unit_price * self.quantity)
