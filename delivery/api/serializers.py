from rest_framework import serializers

from delivery.models import ParcelMachine


class ParcelMachineSerializer(serializers.ModelSerializer):
    """R4: a Latvian Omniva parcel machine; `id` is Omniva's ZIP, the value checkout takes
    as `delivery.parcel_machine_id`."""

    id = serializers.CharField(source="zip", read_only=True, help_text="The Omniva ZIP.")

    class Meta:
        model = ParcelMachine
        fields = ["id", "name", "city", "address"]
        read_only_fields = fields
