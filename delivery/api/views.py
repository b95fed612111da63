from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import viewsets

from delivery import selectors
from delivery.api.filters import ParcelMachineFilter
from delivery.api.serializers import ParcelMachineSerializer

ORIGO_EXAMPLE = OpenApiExample(
    "Origo",
    value={
        "id": "9001",
        "name": "Rīga Origo Omniva pakomāts",
        "city": "Rīga",
        "address": "Stacijas laukums 2",
    },
    response_only=True,
)


@extend_schema_view(
    list=extend_schema(summary="Latvian Omniva parcel machines"),
    retrieve=extend_schema(
        summary="One parcel machine by its Omniva ZIP",
        parameters=[
            OpenApiParameter(
                "id",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The Omniva ZIP, as in `delivery.parcel_machine_id` (e.g. 9001).",
            )
        ],
        examples=[ORIGO_EXAMPLE],
    ),
)
class ParcelMachineViewSet(viewsets.ReadOnlyModelViewSet):
    """R4: the active Latvian Omniva parcel machines a customer may choose at checkout."""

    serializer_class = ParcelMachineSerializer
    filterset_class = ParcelMachineFilter
    lookup_field = "zip"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.active_parcel_machines()
