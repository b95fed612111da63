"""Input validation and output shapes of the order API (DESIGN.md section 10).

Serializers check the form of the input (R3, R4, R5); the services decide the rest.
"""

from __future__ import annotations

import re

import phonenumbers
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from legal.models import ConsentPurpose
from orders.models import Capacity, DeliveryMethod, Order, OrderLine
from orders.selectors import OrderSummary

POSTAL_CODE = re.compile(r"^LV-\d{4}$")
MONEY = {"max_digits": 12, "decimal_places": 2}


def normalise_phone(raw: str) -> str:
    """R3: E.164, default region LV."""
    try:
        number = phonenumbers.parse(raw, "LV")
    except phonenumbers.NumberParseException as exc:
        raise serializers.ValidationError(_("Enter a valid phone number."), code="invalid") from exc
    if not phonenumbers.is_valid_number(number):
        raise serializers.ValidationError(_("Enter a valid phone number."), code="invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class CustomerInSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=100)
    last_name = serializers.CharField(max_length=100)
    email = serializers.EmailField(max_length=254)
    phone = serializers.CharField(max_length=32)
    is_consumer = serializers.BooleanField(default=True)
    company_name = serializers.CharField(
        max_length=200, allow_null=True, allow_blank=True, required=False
    )
    company_reg_no = serializers.CharField(
        max_length=40, allow_null=True, allow_blank=True, required=False
    )

    def validate_phone(self, value: str) -> str:
        return normalise_phone(value)

    def validate_email(self, value: str) -> str:
        return value.strip().lower()

    def validate(self, attrs):
        # R5: a business buyer names the company; it is not a consumer.
        if not attrs.get("is_consumer", True):
            errors = {}
            for name in ("company_name", "company_reg_no"):
                if not (attrs.get(name) or "").strip():
                    errors[name] = [_("Required for a business buyer.")]
            if errors:
                raise serializers.ValidationError(errors, code="required")
        return attrs


class AddressInSerializer(serializers.Serializer):
    street = serializers.CharField(max_length=200)
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=10)
    country = serializers.CharField(max_length=2)

    def validate_postal_code(self, value: str) -> str:
        value = value.strip().upper()
        if not POSTAL_CODE.match(value):
            raise serializers.ValidationError(
                _("A Latvian postal code looks like LV-1050."), code="invalid"
            )
        return value

    def validate_country(self, value: str) -> str:
        if value.strip().upper() != "LV":
            # R4 (T5.1): delivery in Latvia only.
            raise serializers.ValidationError(_("We deliver in Latvia only."), code="not_latvia")
        return "LV"


class DeliveryInSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=DeliveryMethod.choices)
    parcel_machine_id = serializers.CharField(
        max_length=10, allow_null=True, allow_blank=True, required=False
    )
    address = AddressInSerializer(allow_null=True, required=False)

    def validate(self, attrs):
        if attrs["method"] == DeliveryMethod.PARCEL_MACHINE and not attrs.get("parcel_machine_id"):
            raise serializers.ValidationError(
                {"parcel_machine_id": [_("Choose a parcel machine.")]}, code="required"
            )
        if attrs["method"] == DeliveryMethod.COURIER and not attrs.get("address"):
            raise serializers.ValidationError(
                {"address": [_("A courier delivery needs an address.")]}, code="required"
            )
        return attrs


class LineInSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=999)


class OrderInSerializer(serializers.Serializer):
    customer = CustomerInSerializer()
    capacity = serializers.ChoiceField(
        choices=Capacity.choices,
        help_text="R5: `adult`, or `minor_with_consent` (14-17 with a parent's consent).",
    )
    delivery = DeliveryInSerializer()
    lines = LineInSerializer(many=True, allow_empty=False, max_length=200)
    accepted_terms_version = serializers.CharField(max_length=32)
    consents = serializers.DictField(child=serializers.BooleanField(), required=False)

    def validate_consents(self, value):
        unknown = set(value) - set(ConsentPurpose.values)
        if unknown:
            raise serializers.ValidationError(
                _("Unknown consent purpose: %(p)s") % {"p": ", ".join(sorted(unknown))},
                code="invalid_choice",
            )
        return value


class SubstitutionDecisionSerializer(serializers.Serializer):
    accept = serializers.BooleanField(help_text="R13: accept the substitute, or decline it.")


# --- Output --------------------------------------------------------------------------


class SubstituteSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(**MONEY)


class OrderLineSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    quantity_to_ship = serializers.IntegerField(
        read_only=True, help_text="R16: units that ship (less those withdrawn before dispatch)."
    )
    substitute = serializers.SerializerMethodField()

    class Meta:
        model = OrderLine
        fields = [
            "id",
            "sku",
            "name",
            "quantity",
            "quantity_to_ship",
            "unit_price",
            "vat_rate",
            "line_total",
            "sealed_hygiene",
            "status",
            "substitute",
        ]

    def get_name(self, line: OrderLine) -> str:
        return line_name(line)

    @extend_schema_field(SubstituteSerializer(allow_null=True))
    def get_substitute(self, line: OrderLine):
        return line_substitute(line)


def line_name(line: OrderLine) -> str:
    if (get_language() or "lv").startswith("en") and line.name_en:
        return line.name_en
    return line.name_lv


def line_substitute(line: OrderLine) -> dict | None:
    """R13: the substitute offered for an unavailable line."""
    if line.substitute_product_id is None or line.status != "unavailable":
        return None
    product = line.substitute_product
    return {"sku": product.sku, "name": product.name, "price": f"{product.price:.2f}"}


class InvoiceRefSerializer(serializers.Serializer):
    number = serializers.CharField()
    issue_date = serializers.DateField()
    due_date = serializers.DateField()
    payment_reference = serializers.CharField()
    total = serializers.DecimalField(**MONEY)


class MoneyMovementSerializer(serializers.Serializer):
    amount = serializers.DecimalField(**MONEY)
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    due_date = serializers.DateField(allow_null=True)
    date = serializers.DateTimeField()


class DeliveryOutSerializer(serializers.Serializer):
    method = serializers.CharField()
    parcel_machine_id = serializers.CharField(allow_null=True)
    address = serializers.CharField()


class EstimateSerializer(serializers.Serializer):
    earliest = serializers.DateField()
    latest = serializers.DateField()


class OrderSerializer(serializers.ModelSerializer):
    """The order as its customer sees it. Needs `summary` (OrderSummary) in the context."""

    lines = OrderLineSerializer(many=True, read_only=True)
    invoice = serializers.SerializerMethodField()
    amount_paid = serializers.SerializerMethodField()
    amount_refunded = serializers.SerializerMethodField()
    amount_open = serializers.SerializerMethodField()
    payments = serializers.SerializerMethodField()
    refunds = serializers.SerializerMethodField()
    delivery = serializers.SerializerMethodField()
    estimated_delivery = serializers.SerializerMethodField()
    withdrawal_deadline = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "number",
            "status",
            "cancel_reason",
            "placed_at",
            "is_consumer",
            "lines",
            "goods_total",
            "delivery_fee",
            "total",
            "currency",
            "invoice",
            "amount_paid",
            "amount_refunded",
            "amount_open",
            "payments",
            "refunds",
            "delivery",
            "contact_deadline",
            "contact_established_at",
            "paid_at",
            "estimated_delivery",
            "shipped_at",
            "delivered_at",
            "withdrawal_deadline",
            "terms_version",
        ]

    terms_version = serializers.SlugRelatedField(slug_field="version", read_only=True)

    @property
    def _summary(self) -> OrderSummary:
        return self.context["summary"]

    @extend_schema_field(InvoiceRefSerializer(allow_null=True))
    def get_invoice(self, order):
        invoice = self._summary.invoice
        if invoice is None:
            return None
        return InvoiceRefSerializer(
            {
                "number": invoice.number,
                "issue_date": invoice.issue_date,
                "due_date": invoice.due_date,
                "payment_reference": invoice.payment_reference,
                "total": invoice.total,
            }
        ).data

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_amount_paid(self, order) -> str:
        return f"{self._summary.amount_paid:.2f}"

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_amount_refunded(self, order) -> str:
        return f"{self._summary.amount_refunded:.2f}"

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_amount_open(self, order) -> str:
        return f"{self._summary.amount_open:.2f}"

    @extend_schema_field(MoneyMovementSerializer(many=True))
    def get_payments(self, order):
        return MoneyMovementSerializer(
            [
                {
                    "amount": p.amount,
                    "status": "received",
                    "reason": p.method,
                    "due_date": None,
                    "date": p.received_at,
                }
                for p in order.payments.all()
            ],
            many=True,
        ).data

    @extend_schema_field(MoneyMovementSerializer(many=True))
    def get_refunds(self, order):
        return MoneyMovementSerializer(
            [
                {
                    "amount": r.amount,
                    "status": r.status,
                    "reason": r.reason,
                    "due_date": r.due_date,
                    "date": r.created_at,
                }
                for r in order.refunds.all()
            ],
            many=True,
        ).data

    @extend_schema_field(DeliveryOutSerializer)
    def get_delivery(self, order):
        return {
            "method": order.delivery_method,
            "parcel_machine_id": order.parcel_machine.zip if order.parcel_machine else None,
            "address": order.delivery_address_text,
        }

    @extend_schema_field(EstimateSerializer(allow_null=True))
    def get_estimated_delivery(self, order):
        estimate = self._summary.estimated_delivery
        if estimate is None:
            return None
        return {"earliest": estimate[0].isoformat(), "latest": estimate[1].isoformat()}

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_withdrawal_deadline(self, order):
        deadline = self._summary.withdrawal_deadline
        return None if deadline is None else _DATETIME.to_representation(deadline)

    def to_representation(self, order):
        """The fields above, written out: a ModelSerializer builds its fields again for
        every instance, which was most of the checkout answer's cost. The declarations
        stay the schema; `tests/orders/test_order_representation.py` checks the two agree.
        """
        summary = self._summary
        return {
            "number": order.number,
            "status": order.status,
            "cancel_reason": order.cancel_reason,
            "placed_at": _datetime(order.placed_at),
            "is_consumer": order.is_consumer,
            "lines": [_line(line) for line in order.lines.all()],
            "goods_total": _money(order.goods_total),
            "delivery_fee": _money(order.delivery_fee),
            "total": _money(order.total),
            "currency": order.currency,
            "invoice": self.get_invoice(order),
            "amount_paid": self.get_amount_paid(order),
            "amount_refunded": self.get_amount_refunded(order),
            "amount_open": self.get_amount_open(order),
            "payments": [
                _movement(p.amount, "received", p.method, None, p.received_at)
                for p in order.payments.all()
            ],
            "refunds": [
                _movement(r.amount, r.status, r.reason, r.due_date, r.created_at)
                for r in order.refunds.all()
            ],
            "delivery": self.get_delivery(order),
            "contact_deadline": _datetime(order.contact_deadline),
            "contact_established_at": _datetime(order.contact_established_at),
            "paid_at": _datetime(order.paid_at),
            "estimated_delivery": self.get_estimated_delivery(order),
            "shipped_at": _datetime(order.shipped_at),
            "delivered_at": _datetime(order.delivered_at),
            "withdrawal_deadline": _datetime(summary.withdrawal_deadline),
            "terms_version": order.terms_version.version if order.terms_version_id else None,
        }

    def field_by_field(self, order):
        """What DRF renders from the declarations (the reference for the test)."""
        return super().to_representation(order)


_MONEY = serializers.DecimalField(**MONEY)
_VAT_RATE = serializers.DecimalField(max_digits=5, decimal_places=2)
_DATETIME = serializers.DateTimeField()
_DATE = serializers.DateField()


def _money(value):
    return _MONEY.to_representation(value)


def _datetime(value):
    return None if value is None else _DATETIME.to_representation(value)


def _line(line: OrderLine) -> dict:
    return {
        "id": line.pk,
        "sku": line.sku,
        "name": line_name(line),
        "quantity": line.quantity,
        "quantity_to_ship": line.quantity_to_ship,
        "unit_price": _money(line.unit_price),
        "vat_rate": _VAT_RATE.to_representation(line.vat_rate),
        "line_total": _money(line.line_total),
        "sealed_hygiene": line.sealed_hygiene,
        "status": line.status,
        "substitute": line_substitute(line),
    }


def _movement(amount, status, reason, due_date, date) -> dict:
    return {
        "amount": _money(amount),
        "status": status,
        "reason": reason,
        "due_date": None if due_date is None else _DATE.to_representation(due_date),
        "date": _datetime(date),
    }


class PlacedOrderSerializer(OrderSerializer):
    access_token = serializers.SerializerMethodField()

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "access_token"]

    def get_access_token(self, order) -> str:
        """Shown once: keep it to see the order (header X-Order-Token)."""
        return self.context["access_token"]

    def to_representation(self, order):
        return {**super().to_representation(order), "access_token": self.get_access_token(order)}

    def field_by_field(self, order):
        return serializers.ModelSerializer.to_representation(self, order)
