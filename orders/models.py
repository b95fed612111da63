"""Orders, invoices, money in and money out.

State lives in protected FSM fields (django-fsm-2): nobody assigns `.status`; the
transition methods below only check conditions and change fields, and the services in
`orders/services/` open the transactions, take the locks and schedule side effects.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from simple_history.models import HistoricalRecords

from shop.money import ZERO, MoneyField, to_money

# --- Orders ---------------------------------------------------------------------------


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("Placed")
    CONFIRMED = "confirmed", _("Confirmed")
    # pgettext: the same English words also label lines, amounts and claims, which
    # Latvian declines differently; an order status agrees with pasūtījums (masculine).
    PAID = "paid", pgettext_lazy("order status", "Paid")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", pgettext_lazy("order status", "Delivered")
    CLOSED = "closed", pgettext_lazy("order status", "Closed")
    CANCELLED = "cancelled", pgettext_lazy("order status", "Cancelled")


class CancelReason(models.TextChoices):
    NO_CONTACT = "no_contact", _("No contact established (T3.4)")
    UNPAID = "unpaid", _("Invoice not paid on time (R10)")
    CUSTOMER = "customer", _("Cancelled by the customer")
    UNAVAILABLE = "unavailable", _("Goods unavailable (T3.5)")
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed through the customer's fault (T5.4)")
    STAFF = "staff", _("Cancelled by staff")


class Capacity(models.TextChoices):
    ADULT = "adult", _("Adult")
    MINOR_WITH_CONSENT = "minor_with_consent", _("Minor aged 14-17 with a parent's consent")


class DeliveryMethod(models.TextChoices):
    PARCEL_MACHINE = "omniva_parcel_machine", _("Omniva parcel machine")
    COURIER = "omniva_courier", _("Omniva courier")


PRE_DISPATCH = [OrderStatus.PLACED, OrderStatus.CONFIRMED, OrderStatus.PAID]
AWAITING_PAYMENT = [OrderStatus.PLACED, OrderStatus.CONFIRMED]


class Order(ConcurrentTransitionMixin, models.Model):
    number = models.CharField(_("order number"), max_length=16, unique=True)
    status = FSMField(
        _("status"), default=OrderStatus.PLACED, choices=OrderStatus.choices, protected=True
    )
    cancel_reason = models.CharField(
        _("cancellation reason"), max_length=20, choices=CancelReason.choices, blank=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    access_token_hash = models.CharField(max_length=64, editable=False)
    # Emailed links carry this number; raising it revokes every link issued so far
    # (orders.links.revoke_order_links).
    link_generation = models.PositiveIntegerField(default=0, editable=False)
    language = models.CharField(_("language"), max_length=5, default="lv")

    # R1: the contract and the terms version that governs it forever (T1.7).
    placed_at = models.DateTimeField(_("placed at"), default=timezone.now)
    terms_version = models.ForeignKey(
        "legal.TermsVersion", on_delete=models.PROTECT, verbose_name=_("accepted terms")
    )
    # R5: capacity, consumer or business buyer.
    capacity = models.CharField(_("capacity"), max_length=20, choices=Capacity.choices)
    is_consumer = models.BooleanField(_("consumer"), default=True)
    company_name = models.CharField(_("company name"), max_length=200, blank=True)
    company_reg_no = models.CharField(_("company registration no."), max_length=40, blank=True)

    # R3: customer data (personal data: see legal's retention policy).
    first_name = models.CharField(_("first name"), max_length=100)
    last_name = models.CharField(_("last name"), max_length=100)
    email = models.EmailField(_("email"), db_index=True)
    phone = models.CharField(_("phone (E.164)"), max_length=20)

    # R4: delivery to a Latvian parcel machine or courier address.
    delivery_method = models.CharField(
        _("delivery method"), max_length=32, choices=DeliveryMethod.choices
    )
    parcel_machine = models.ForeignKey(
        "delivery.ParcelMachine", null=True, blank=True, on_delete=models.PROTECT
    )
    parcel_machine_name = models.CharField(_("parcel machine"), max_length=300, blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    country = models.CharField(_("country"), max_length=2, default="LV")

    # R6: the tariff and the totals the order was placed under.
    tariff = models.ForeignKey("delivery.DeliveryTariff", on_delete=models.PROTECT)
    goods_total = MoneyField(_("goods total"), default=ZERO)
    delivery_fee = MoneyField(_("delivery fee"), default=ZERO)
    total = MoneyField(_("total"), default=ZERO)
    currency = models.CharField(max_length=3, default="EUR")

    # Clocks (R10, R12, R7, R14, R16).
    contact_established_at = models.DateTimeField(_("contact established"), null=True, blank=True)
    contact_deadline = models.DateTimeField(_("contact deadline"))
    payment_due_at = models.DateTimeField(_("payment due"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # R10, R12: cancelled, then a payment booked in time arrived: the order runs again.
    reinstated_at = models.DateTimeField(_("reinstated at"), null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["access_token_hash"])

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at"]
        permissions = [
            ("record_contact", _("Can record a successful contact with the customer")),
            ("cancel_order", _("Can cancel an order")),
            ("mark_line_unavailable", _("Can mark order lines unavailable")),
        ]
        indexes = [
            # run_deadlines: only the few orders still waiting are in these indexes.
            models.Index(
                fields=["contact_deadline"],
                name="order_awaiting_contact_idx",
                condition=Q(status="placed", contact_established_at__isnull=True),
            ),
            models.Index(
                fields=["payment_due_at"],
                name="order_awaiting_payment_idx",
                condition=Q(status__in=["placed", "confirmed"]),
            ),
            # Closing orders (returns.withdrawals): delivered ones whose period may be over.
            models.Index(
                fields=["delivered_at"],
                name="order_delivered_idx",
                condition=Q(status="delivered"),
            ),
            # The same job pages through them in pk order: without this index PostgreSQL
            # walks the primary key of all orders to find the delivered ones, which are
            # the newest (1.7 s over a million orders; 1.4 ms with it; bench/daily.py).
            models.Index(
                fields=["id"],
                name="order_delivered_pk_idx",
                condition=Q(status="delivered"),
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def customer_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_cancelled(self) -> bool:
        return self.status == OrderStatus.CANCELLED

    @property
    def delivery_address_text(self) -> str:
        if self.delivery_method == DeliveryMethod.PARCEL_MACHINE:
            return self.parcel_machine_name
        return ", ".join(p for p in [self.street, self.city, self.postal_code] if p)

    # Transitions: pure, no IO (STYLE.md).

    @transition(field=status, source=OrderStatus.PLACED, target=OrderStatus.CONFIRMED)
    def confirm(self, *, at) -> None:
        """R12: contact established, nothing paid in full yet."""
        self.contact_established_at = self.contact_established_at or at

    @transition(field=status, source=AWAITING_PAYMENT, target=OrderStatus.PAID)
    def mark_paid(self, *, at) -> None:
        """R11: paid in full; a payment also establishes contact (R12)."""
        self.paid_at = at
        self.contact_established_at = self.contact_established_at or at

    @transition(field=status, source=OrderStatus.PAID, target=OrderStatus.SHIPPED)
    def ship(self, *, at) -> None:
        self.shipped_at = at

    @transition(field=status, source=OrderStatus.SHIPPED, target=OrderStatus.DELIVERED)
    def deliver(self, *, at) -> None:
        self.delivered_at = at

    @transition(field=status, source=OrderStatus.DELIVERED, target=OrderStatus.CLOSED)
    def close(self, *, at) -> None:
        self.closed_at = at

    @transition(
        field=status, source=[*PRE_DISPATCH, OrderStatus.SHIPPED], target=OrderStatus.CANCELLED
    )
    def cancel(self, *, reason: str, at) -> None:
        self.cancel_reason = reason
        self.cancelled_at = at

    @transition(field=status, source=OrderStatus.CANCELLED, target=OrderStatus.CONFIRMED)
    def reinstate(self, *, at) -> None:
        """R10, R12: a payment booked by the deadline arrived after the cancellation for
        no contact or non-payment; the goods are still there, so the contract runs on
        (the payment established contact)."""
        self.cancel_reason = ""
        self.cancelled_at = None
        self.reinstated_at = at
        self.contact_established_at = self.contact_established_at or at

    def record_delivery_time(self, at) -> None:
        """A later outbound shipment of a split order moves the delivery time on (R16)."""
        if self.delivered_at is None or at > self.delivered_at:
            self.delivered_at = at


class LineStatus(models.TextChoices):
    ORDERED = "ordered", _("Ordered")
    UNAVAILABLE = "unavailable", _("Unavailable, substitute offered")
    REPLACED = "replaced", _("Replaced by a substitute")
    # pozīcija is feminine in Latvian (an order is masculine).
    CANCELLED = "cancelled", pgettext_lazy("order line status", "Cancelled")


class OrderLine(ConcurrentTransitionMixin, models.Model):
    """R2: the price, VAT rate and name are copied at placement and never change."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(_("SKU"), max_length=64)
    name_lv = models.CharField(_("name (Latvian)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    unit_price = MoneyField(_("unit price incl. VAT"))
    vat_rate = models.DecimalField(_("VAT rate, %"), max_digits=5, decimal_places=2)
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    # R16 (CRD Art 9(3)): units withdrawn from before dispatch: they do not ship and their
    # stock is released (the line's price and quantity, R2, stay as invoiced).
    released_quantity = models.PositiveIntegerField(_("withdrawn before dispatch"), default=0)
    line_total = MoneyField(_("line total"))
    sealed_hygiene = models.BooleanField(_("sealed hygiene product"), default=False)
    status = FSMField(
        _("status"), default=LineStatus.ORDERED, choices=LineStatus.choices, protected=True
    )
    # R13: the substitute offered for an unavailable line, and the decision.
    substitute_product = models.ForeignKey(
        "shop.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    substitution_offered_at = models.DateTimeField(null=True, blank=True)
    substitution_decided_at = models.DateTimeField(null=True, blank=True)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} × {self.quantity}"

    @property
    def is_active(self) -> bool:
        return self.status in (LineStatus.ORDERED, LineStatus.UNAVAILABLE)

    @property
    def quantity_to_ship(self) -> int:
        """R16: what the parcel carries of this line (nothing once it is not taken)."""
        if self.status != LineStatus.ORDERED:
            return 0
        return max(self.quantity - self.released_quantity, 0)

    @transition(field=status, source=LineStatus.ORDERED, target=LineStatus.UNAVAILABLE)
    def mark_unavailable(self, *, substitute, at) -> None:
        self.substitute_product = substitute
        self.substitution_offered_at = at

    @transition(field=status, source=LineStatus.UNAVAILABLE, target=LineStatus.REPLACED)
    def accept_substitute(self, *, at) -> None:
        self.substitution_decided_at = at

    @transition(
        field=status,
        source=[LineStatus.ORDERED, LineStatus.UNAVAILABLE],
        target=LineStatus.CANCELLED,
    )
    def cancel(self, *, at) -> None:
        if self.substitution_offered_at and not self.substitution_decided_at:
            self.substitution_decided_at = at

    @transition(field=status, source=LineStatus.CANCELLED, target=LineStatus.ORDERED)
    def reinstate(self) -> None:
        """R10, R12: the order's cancellation is undone (see `Order.reinstate`)."""


class IdempotencyRecord(models.Model):
    """`Idempotency-Key` of POST /api/orders/: the same key and body get the same answer."""

    key = models.CharField(max_length=255, unique=True)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    order = models.ForeignKey(Order, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")

    def __str__(self) -> str:
        return self.key


# --- Invoices (R9) ----------------------------------------------------------------------


class InvoiceCounter(models.Model):
    """A gapless counter per series and year, incremented under a row lock (R9).

    Never a database sequence: sequences leave gaps on rollback.
    """

    series = models.CharField(max_length=16)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "year"], name="invoice_counter_per_year")
        ]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")


class Invoice(models.Model):
    """R9: an electronic invoice, valid without signature (T4.2); numbers are gapless."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=16, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    corrects = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections"
    )
    number = models.CharField(_("number"), max_length=32, unique=True)
    series = models.CharField(max_length=16)
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    issue_date = models.DateField(_("issue date"))
    due_date = models.DateField(_("due date"), null=True, blank=True)
    # Snapshot of the parties (personal data of the buyer: accounting records, R28).
    seller = models.JSONField(default=dict)
    buyer_name = models.CharField(_("buyer"), max_length=300)
    buyer_address = models.CharField(_("buyer address"), max_length=400, blank=True)
    buyer_reg_no = models.CharField(max_length=40, blank=True)
    total = MoneyField(_("total"))
    vat_breakdown = models.JSONField(default=list)  # [{"rate", "taxable", "vat", "gross"}]

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "year", "sequence"], name="invoice_sequence_unique"
            )
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def payment_reference(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=300)
    sku = models.CharField(max_length=64, blank=True)
    quantity = models.IntegerField()
    unit_price = MoneyField()
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    total = MoneyField()

    class Meta:
        ordering = ["invoice", "pk"]

    def __str__(self) -> str:
        return f"{self.description} × {self.quantity}"


# --- Money in (R11) ---------------------------------------------------------------------


class BankStatement(models.Model):
    """An imported camt.053 / camt.054 file (R11)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Imported")
        FAILED = "failed", _("Failed")

    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    message_type = models.CharField(_("message type"), max_length=32, blank=True)
    statement_id = models.CharField(_("statement id"), max_length=100, blank=True)
    account_iban = models.CharField(_("account"), max_length=34, blank=True)
    uploaded_file = models.FileField(upload_to="statements/%Y/", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total_entries = models.PositiveIntegerField(default=0)
    processed_entries = models.PositiveIntegerField(default=0)
    new_entries = models.PositiveIntegerField(default=0)
    duplicate_entries = models.PositiveIntegerField(default=0)
    matched_entries = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Credits refused while the rest of the file imported (issue 14): [{"line",
    # "reference", "reason"}], shown to staff on the statement and by the command.
    refused_entries = models.JSONField(_("refused entries"), default=list, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("bank statement")
        verbose_name_plural = _("bank statements")
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return self.file_name

    @property
    def progress_percent(self) -> int:
        if not self.total_entries:
            return 100 if self.status == self.Status.DONE else 0
        return int(100 * self.processed_entries / self.total_entries)


class BankEntryStatus(models.TextChoices):
    MATCHED = "matched", _("Matched")
    UNMATCHED = "unmatched", _("Waiting for staff")
    IGNORED = "ignored", _("Ignored by staff")


class BankEntry(models.Model):
    """One credit entry of a statement, stored once (re-imports change nothing)."""

    statement = models.ForeignKey(BankStatement, on_delete=models.PROTECT, related_name="entries")
    entry_key = models.CharField(max_length=128, unique=True)  # bank reference or content hash
    amount = MoneyField(_("amount"))
    currency = models.CharField(max_length=3, default="EUR")
    booking_date = models.DateField(_("booking date"))
    value_date = models.DateField(_("value date"), null=True, blank=True)
    debtor_name = models.CharField(_("payer"), max_length=140, blank=True)
    debtor_iban = models.CharField(_("payer account"), max_length=34, blank=True)
    debtor_bic = models.CharField(max_length=11, blank=True)
    remittance_info = models.CharField(_("remittance information"), max_length=500, blank=True)
    creditor_reference = models.CharField(_("creditor reference"), max_length=64, blank=True)
    bank_reference = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=BankEntryStatus.choices, default=BankEntryStatus.UNMATCHED
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="bank_entries"
    )
    note = models.CharField(_("staff note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("bank entry")
        verbose_name_plural = _("bank entries")
        ordering = ["-booking_date", "-pk"]
        indexes = [
            models.Index(
                fields=["booking_date"],
                name="bank_entry_unmatched_idx",
                condition=Q(status="unmatched"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.booking_date} {self.amount} {self.currency}"


class PaymentMethod(models.TextChoices):
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CARD = "card", _("Card (Stripe)")
    MANUAL = "manual", _("Recorded by staff")


class Payment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount = MoneyField(_("amount"), validators=[MinValueValidator(Decimal("0.01"))])
    method = models.CharField(_("method"), max_length=20, choices=PaymentMethod.choices)
    received_at = models.DateTimeField(_("received at"))
    bank_entry = models.OneToOneField(
        BankEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="payment"
    )
    stripe_payment_intent = models.CharField(max_length=255, null=True, blank=True, unique=True)
    payer_name = models.CharField(_("payer"), max_length=140, blank=True)
    payer_iban = models.CharField(_("payer account"), max_length=34, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["received_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} EUR ({self.get_method_display()})"


# --- Money out --------------------------------------------------------------------------


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Held until the goods or proof of dispatch arrive")
    READY = "ready", _("Ready for approval")
    APPROVED = "approved", _("Approved")
    SENT = "sent", _("Sent")
    SETTLED = "settled", _("Settled")
    # atmaksa is feminine in Latvian (a bank statement import is not).
    FAILED = "failed", pgettext_lazy("refund status", "Failed")


class RefundReason(models.TextChoices):
    OVERPAYMENT = "overpayment", _("Overpayment (T4.3)")
    NO_CONTACT = "no_contact", _("Order cancelled, no contact (T3.4)")
    UNPAID_LATE_PAYMENT = "unpaid_late_payment", _("Payment after cancellation (R10)")
    CUSTOMER_CANCEL = "customer_cancel", _("Cancelled by the customer")
    UNAVAILABLE = "unavailable", _("Goods unavailable (T3.5)")
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed (T5.4)")
    WITHDRAWAL = "withdrawal", _("Withdrawal (T7.6)")
    CONFORMITY = "conformity", _("Conformity claim (T6)")
    STAFF = "staff", _("Other, by staff")


class RefundDestination(models.TextChoices):
    IBAN = "iban", _("Bank transfer to an IBAN")
    CARD = "card", _("Back to the card payment")


OPEN_REFUND_STATUSES = [
    RefundStatus.PENDING,
    RefundStatus.READY,
    RefundStatus.APPROVED,
    RefundStatus.SENT,
]


class RefundQuerySet(models.QuerySet):
    def committed(self):
        """Refunds that took or will take money back: everything but failed ones."""
        return self.exclude(status=RefundStatus.FAILED)

    def committed_total(self) -> Decimal:
        return to_money(self.committed().aggregate(s=Sum("amount"))["s"] or ZERO)

    def overdue(self, today: date):
        return self.filter(
            status__in=[RefundStatus.PENDING, RefundStatus.READY, RefundStatus.APPROVED],
            due_date__lt=today,
        )


class Refund(ConcurrentTransitionMixin, models.Model):
    """Money back to a customer. Every refund goes through `orders.services.refunds`,
    which refuses any refund that would take back more than was paid."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount = MoneyField(_("amount"), validators=[MinValueValidator(Decimal("0.01"))])
    reason = models.CharField(_("reason"), max_length=24, choices=RefundReason.choices)
    status = FSMField(
        _("status"), default=RefundStatus.READY, choices=RefundStatus.choices, protected=True
    )
    destination = models.CharField(
        _("destination"), max_length=8, choices=RefundDestination.choices, default="iban"
    )
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    account_holder = models.CharField(_("account holder"), max_length=140, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    due_date = models.DateField(_("due date"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=300, blank=True)
    overdue_flagged_at = models.DateTimeField(_("flagged overdue"), null=True, blank=True)
    sepa_export = models.ForeignKey(
        "SepaExport", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    external_id = models.CharField(_("processor id"), max_length=255, blank=True)

    objects = RefundQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["due_date", "pk"]
        permissions = [("approve_refund", _("Can approve refunds"))]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        indexes = [
            models.Index(
                fields=["due_date"],
                name="refund_open_due_idx",
                condition=Q(status__in=["pending", "ready", "approved"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.amount} EUR → {self.order.number} ({self.get_status_display()})"

    @property
    def is_overdue(self) -> bool:
        from shop.selectors import today_in_riga

        return (
            self.status
            in (
                RefundStatus.PENDING,
                RefundStatus.READY,
                RefundStatus.APPROVED,
            )
            and self.due_date < today_in_riga()
        )

    @transition(field=status, source=RefundStatus.PENDING, target=RefundStatus.READY)
    def release(self) -> None:
        """R21: the goods or the proof of dispatch arrived; pay without delay."""

    @transition(field=status, source=RefundStatus.READY, target=RefundStatus.APPROVED)
    def approve(self, *, by, at) -> None:
        self.approved_by = by
        self.approved_at = at

    @transition(field=status, source=RefundStatus.APPROVED, target=RefundStatus.SENT)
    def mark_sent(self, *, at, export=None, external_id: str = "") -> None:
        self.sent_at = at
        self.sepa_export = export
        self.external_id = external_id or self.external_id

    @transition(field=status, source=RefundStatus.SENT, target=RefundStatus.SETTLED)
    def settle(self, *, at) -> None:
        self.settled_at = at

    @transition(
        field=status,
        # Pending or ready: a withdrawal refund dropped at inspection (R22, reduce_refund).
        source=[
            RefundStatus.PENDING,
            RefundStatus.READY,
            RefundStatus.APPROVED,
            RefundStatus.SENT,
            RefundStatus.SETTLED,
        ],
        target=RefundStatus.FAILED,
    )
    def fail(self, *, reason: str, at) -> None:
        self.failure_reason = reason
        self.failed_at = at


class RefundTarget(models.TextChoices):
    LINE = "line", _("Order line")
    FEE = "fee", _("Delivery fee")
    EXCESS = "excess", _("Overpayment")


class RefundAllocation(models.Model):
    """R32: what a refund takes from each place the order's money sits (a line, the
    delivery fee, or the overpayment). Written with the refund under the order lock by
    `orders.services.account`; lowered with it at inspection (R22)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="allocations")
    target = models.CharField(_("taken from"), max_length=8, choices=RefundTarget.choices)
    line = models.ForeignKey(
        OrderLine, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount = MoneyField(_("amount"))

    class Meta:
        verbose_name = _("refund allocation")
        verbose_name_plural = _("refund allocations")
        ordering = ["refund", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_alloc_not_negative"),
            models.CheckConstraint(
                condition=(Q(target="line") & Q(line__isnull=False))
                | (~Q(target="line") & Q(line__isnull=True)),
                name="refund_alloc_line_iff_line_target",
            ),
            models.UniqueConstraint(
                fields=["refund", "target", "line"], name="refund_alloc_once_per_target"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} EUR from {self.line or self.get_target_display()}"


class SepaExport(models.Model):
    """A pain.001 file of approved bank refunds."""

    message_id = models.CharField(max_length=35, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    file_name = models.CharField(max_length=100)
    content = models.TextField()
    total = MoneyField()
    count = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("SEPA export")
        verbose_name_plural = _("SEPA exports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.file_name


# --- Card payments through Stripe (R11s) ------------------------------------------------


class StripeEventResult(models.TextChoices):
    RECEIVED = "received", _("Received, not applied yet")
    APPLIED = "applied", _("Applied")
    DUPLICATE = "duplicate", _("Already applied")
    RECORDED = "recorded", _("Recorded for staff")
    UNCHANGED = "unchanged", _("Changed nothing")
    UNMATCHED = "unmatched", _("No matching order or refund")
    IGNORED = "ignored", _("Type not handled")


class StripeEvent(models.Model):
    """A signed Stripe webhook event, stored once under its id (raw payload) and applied
    by `orders.services.card_payments`. A failed card payment stays here for staff."""

    event_id = models.CharField(_("event id"), max_length=255, unique=True)
    type = models.CharField(_("type"), max_length=100, db_index=True)
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    result = models.CharField(
        _("result"),
        max_length=16,
        choices=StripeEventResult.choices,
        default=StripeEventResult.RECEIVED,
    )
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stripe_events",
        verbose_name=_("order"),
    )
    payment_intent = models.CharField(_("payment intent"), max_length=255, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["payment_intent"], name="stripe_event_intent_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
