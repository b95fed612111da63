"""Delivery tariffs (R6), the Omniva parcel-machine directory (R4), shipments and the raw
courier events they received (R14)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from delivery import rules
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


# --- Shipments (R14) ---------------------------------------------------------------------


class ShipmentStatus(models.TextChoices):
    PENDING = rules.PENDING, _("Waiting for registration with the courier")
    REGISTERED = rules.REGISTERED, _("Registered")
    IN_TRANSIT = rules.IN_TRANSIT, _("In transit")
    READY_FOR_PICKUP = rules.READY_FOR_PICKUP, _("Ready for pickup")
    DELIVERED = rules.DELIVERED, _("Delivered")
    DELIVERY_FAILED = rules.DELIVERY_FAILED, _("Delivery failed")
    RETURNED_TO_SENDER = rules.RETURNED_TO_SENDER, _("Returned to sender")
    CANCELLED = rules.CANCELLED, _("Stopped before registration")


class ShipmentDirection(models.TextChoices):
    OUTBOUND = "outbound", _("To the customer")
    RETURN = "return", _("Back to the shop")


class RegistrationMethod(models.TextChoices):
    BY_HAND = "by_hand", _("Barcode recorded by staff")
    COURIER_API = "courier_api", _("Registered through the courier's API")
    RETURN_CODE = "return_code", _("Sent back with the return code")


OPEN_SHIPMENT_STATUSES = [
    ShipmentStatus.REGISTERED,
    ShipmentStatus.IN_TRANSIT,
    ShipmentStatus.READY_FOR_PICKUP,
    ShipmentStatus.DELIVERY_FAILED,
]
_BEFORE_DELIVERY = [ShipmentStatus.REGISTERED, ShipmentStatus.IN_TRANSIT]
# An outbound parcel still on its way (or waiting to be): its order is neither delivered
# for good nor closed (R16).
PARCEL_ON_ITS_WAY_STATUSES = [ShipmentStatus.PENDING, *OPEN_SHIPMENT_STATUSES]
# With the courier: registered with a barcode; the order can no longer be cancelled (R14c).
WITH_COURIER_STATUSES = OPEN_SHIPMENT_STATUSES


class Shipment(ConcurrentTransitionMixin, models.Model):
    """A parcel to the customer (outbound) or back to the shop (return).

    The status only moves forward (R14b, `delivery.rules.courier_step`); transitions are
    pure, the services in `delivery.services` do the rest. An order may have several.
    """

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="shipments")
    direction = models.CharField(
        _("direction"),
        max_length=10,
        choices=ShipmentDirection.choices,
        default=ShipmentDirection.OUTBOUND,
    )
    status = FSMField(
        _("status"), default=ShipmentStatus.PENDING, choices=ShipmentStatus.choices, protected=True
    )
    # Null until the courier gave one (a shipment waiting for its Omniva registration).
    barcode = models.CharField(_("barcode"), max_length=32, unique=True, null=True, blank=True)
    registration = models.CharField(
        _("registered"), max_length=16, choices=RegistrationMethod.choices, blank=True
    )
    # T7.5: the code the customer sends the goods back with (outbound shipments).
    return_code = models.CharField(_("return code"), max_length=32, blank=True, db_index=True)
    return_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="returns",
        verbose_name=_("return of"),
    )
    label_pdf = models.BinaryField(_("label (PDF)"), null=True, blank=True, editable=False)
    # The order lines it carries: [{"line_id", "sku", "quantity"}].
    lines = models.JSONField(_("lines"), default=list, blank=True)
    # A free replacement under a conformity claim (R24): its delivery neither delivers the
    # order nor moves the withdrawal period, its failure does not cancel the order.
    replacement = models.BooleanField(_("replacement"), default=False)
    note = models.CharField(_("note"), max_length=300, blank=True)

    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    registered_at = models.DateTimeField(_("registered at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=200, blank=True)
    last_event_at = models.DateTimeField(_("last event"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last tracking poll"), null=True, blank=True)
    # What the courier answered when the registration failed for good (shown to staff).
    registration_error = models.CharField(_("registration error"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The tracking poller: open shipments with a barcode, least recently asked first.
            models.Index(
                fields=["last_polled_at"],
                name="shipment_open_poll_idx",
                condition=Q(
                    status__in=["registered", "in_transit", "ready_for_pickup", "delivery_failed"],
                    barcode__isnull=False,
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.barcode or str(_("shipment #%(pk)s (no barcode yet)") % {"pk": self.pk})

    @property
    def is_return(self) -> bool:
        return self.direction == ShipmentDirection.RETURN

    # Transitions: pure, no IO (STYLE.md).

    @transition(field=status, source=ShipmentStatus.PENDING, target=ShipmentStatus.REGISTERED)
    def register(self, *, barcode: str | None, via: str, at, return_code: str = "") -> None:
        self.barcode = barcode
        self.registration = via
        self.registered_at = at
        self.return_code = return_code or self.return_code
        self.registration_error = ""

    @transition(field=status, source=ShipmentStatus.PENDING, target=ShipmentStatus.CANCELLED)
    def cancel(self, *, at, note: str = "") -> None:
        self.failed_at = at
        self.note = (note or self.note)[:300]

    @transition(field=status, source=ShipmentStatus.REGISTERED, target=ShipmentStatus.IN_TRANSIT)
    def mark_in_transit(self, *, at) -> None:
        self.last_event_at = at

    @transition(field=status, source=_BEFORE_DELIVERY, target=ShipmentStatus.READY_FOR_PICKUP)
    def mark_ready_for_pickup(self, *, at) -> None:
        self.last_event_at = at

    @transition(
        field=status,
        # R14c: a failed delivery may still end delivered (a second attempt).
        source=[*_BEFORE_DELIVERY, ShipmentStatus.READY_FOR_PICKUP, ShipmentStatus.DELIVERY_FAILED],
        target=ShipmentStatus.DELIVERED,
    )
    def mark_delivered(self, *, at) -> None:
        self.delivered_at = at
        self.last_event_at = at

    @transition(
        field=status,
        source=[*_BEFORE_DELIVERY, ShipmentStatus.READY_FOR_PICKUP],
        target=ShipmentStatus.DELIVERY_FAILED,
    )
    def mark_delivery_failed(self, *, at, reason: str = "") -> None:
        self.failed_at = at
        self.failure_reason = reason[:200]
        self.last_event_at = at

    @transition(
        field=status,
        source=[*_BEFORE_DELIVERY, ShipmentStatus.READY_FOR_PICKUP, ShipmentStatus.DELIVERY_FAILED],
        target=ShipmentStatus.RETURNED_TO_SENDER,
    )
    def mark_returned_to_sender(self, *, at, reason: str = "") -> None:
        self.failed_at = self.failed_at or at
        self.failure_reason = (reason or self.failure_reason)[:200]
        self.last_event_at = at


class CourierEventName(models.TextChoices):
    """The event names of the courier webhook (DESIGN.md section 10)."""

    REGISTERED = "registered", _("Registered")
    ACCEPTED = "accepted", _("Accepted by the courier")
    IN_TRANSIT = "in_transit", _("In transit")
    READY_FOR_PICKUP = "ready_for_pickup", _("Ready for pickup")
    DELIVERED = "delivered", _("Delivered")
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed")
    RETURNED_TO_SENDER = "returned_to_sender", _("Returned to sender")
    RETURN_ACCEPTED = "return_accepted", _("Return accepted by the courier")
    RETURN_DELIVERED = "return_delivered", _("Return delivered to the shop")


class CourierEventResult(models.TextChoices):
    APPLIED = "applied", _("Applied")
    STALE = "stale", _("Stale: kept, changed nothing")
    UNMATCHED = "unmatched", _("Unknown barcode: waiting for staff")
    DISMISSED = "dismissed", _("Dismissed by staff")


class CourierEventChannel(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    POLLER = "poller", _("Tracking poller")


class CourierEvent(models.Model):
    """A raw courier event, stored once under its `(source, event_id)` (R14b).

    Events for unknown barcodes are kept as `unmatched` for staff.
    """

    source = models.CharField(_("source"), max_length=16, default="omniva")
    event_id = models.CharField(_("event id"), max_length=128)
    channel = models.CharField(
        _("channel"), max_length=10, choices=CourierEventChannel.choices, default="webhook"
    )
    barcode = models.CharField(_("barcode"), max_length=64, db_index=True)
    event = models.CharField(_("event"), max_length=32, choices=CourierEventName.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    location = models.CharField(_("location"), max_length=200, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    payload = models.JSONField(_("raw event"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    result = models.CharField(
        _("result"), max_length=12, choices=CourierEventResult.choices, blank=True
    )
    note = models.CharField(_("staff note"), max_length=300, blank=True)
    # R14c: an applied event staff must look at (a failed delivery whose reason names no
    # fault of the customer's, a delivery of a cancelled order); cleared when handled.
    needs_review = models.BooleanField(_("waiting for staff"), default=False)
    review_reason = models.CharField(_("why staff should look"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("courier event")
        verbose_name_plural = _("courier events")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="courier_event_once"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="courier_event_unmatched_idx",
                condition=Q(result="unmatched"),
            ),
            models.Index(
                fields=["received_at"],
                name="courier_event_review_idx",
                condition=Q(needs_review=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.barcode} {self.event} ({self.event_id})"
