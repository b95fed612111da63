from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from delivery.couriers import get_courier
from delivery.models import CourierEventName, ParcelMachine, Shipment


class ParcelMachineSerializer(serializers.ModelSerializer):
    """R4: a Latvian Omniva parcel machine; `id` is Omniva's ZIP, the value checkout takes
    as `delivery.parcel_machine_id`."""

    id = serializers.CharField(source="zip", read_only=True, help_text="The Omniva ZIP.")

    class Meta:
        model = ParcelMachine
        fields = ["id", "name", "city", "address"]
        read_only_fields = fields


class CourierEventInSerializer(serializers.Serializer):
    """The courier webhook's body (DESIGN.md section 10)."""

    event_id = serializers.CharField(max_length=128)
    barcode = serializers.CharField(max_length=64)
    event = serializers.ChoiceField(choices=CourierEventName.choices)
    occurred_at = serializers.DateTimeField(help_text="ISO 8601")
    location = serializers.CharField(
        max_length=200, required=False, allow_blank=True, allow_null=True, default=""
    )
    reason = serializers.CharField(
        max_length=200, required=False, allow_blank=True, allow_null=True, default=""
    )

    def validate_occurred_at(self, value):
        """R14b: an event time within a sane window around now (settings
        COURIER_EVENT_MAX_AGE_DAYS / COURIER_EVENT_MAX_AHEAD_DAYS); a courier event of 2001
        or 2099 is a forged or broken one and changes nothing."""
        now = timezone.now()
        earliest = now - timedelta(days=settings.COURIER_EVENT_MAX_AGE_DAYS)
        latest = now + timedelta(days=settings.COURIER_EVENT_MAX_AHEAD_DAYS)
        if not earliest <= value <= latest:
            raise serializers.ValidationError(
                "The event time is too far from now.", code="occurred_at_out_of_range"
            )
        return value


class CourierEventResultSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=["applied", "duplicate", "stale", "unmatched"])


class ShipmentInSerializer(serializers.Serializer):
    barcode = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        help_text="A barcode registered by hand in Omniva's e-service; leave out to have the "
        "Omniva client register the parcel.",
    )


class ShipmentSerializer(serializers.ModelSerializer):
    order = serializers.SlugRelatedField(slug_field="number", read_only=True)
    tracking_url = serializers.SerializerMethodField()
    label_url = serializers.SerializerMethodField()

    class Meta:
        model = Shipment
        fields = [
            "id",
            "order",
            "direction",
            "status",
            "barcode",
            "return_code",
            "tracking_url",
            "label_url",
            "registered_at",
            "delivered_at",
            "registration_error",
        ]

    def get_tracking_url(self, shipment: Shipment) -> str | None:
        return get_courier().tracking_url(shipment.barcode) if shipment.barcode else None

    def get_label_url(self, shipment: Shipment) -> str | None:
        if not shipment.label_pdf:
            return None
        return reverse("staff-shipment-label", kwargs={"shipment_id": shipment.pk})
