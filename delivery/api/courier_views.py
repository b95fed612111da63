"""The courier webhook and the staff shipment endpoints: thin, they call the services."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from delivery import services, webhooks
from delivery.api.serializers import (
    CourierEventInSerializer,
    CourierEventResultSerializer,
    ShipmentInSerializer,
    ShipmentSerializer,
)
from delivery.models import Shipment
from orders.api.views import HasModelPermission
from orders.models import Order
from shop.api.errors import PROBLEM_JSON, problem
from shop.api.parsers import BoundedJSONParser, JSONRefused, loads_bounded
from shop.api.throttling import ScopedWindowThrottle, ThrottleRefusedCallsOnly

PROBLEM = OpenApiResponse(description="application/problem+json")
# A courier event is a small flat object: a few hundred bytes, nesting 2 levels at most
# in practice. Anything far beyond is refused before it is parsed or stored.
MAX_BODY_BYTES = 16 * 1024
MAX_DEPTH = 4
SIGNATURE_HEADERS = [
    OpenApiParameter(
        "X-Omniva-Timestamp",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description="Unix seconds; refused when more than 300 s away from now.",
    ),
    OpenApiParameter(
        "X-Omniva-Signature",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description='`sha256=` + hex HMAC-SHA256 of `timestamp + "." + raw body` with '
        "OMNIVA_WEBHOOK_SECRET.",
    ),
]


class OmnivaWebhookView(ThrottleRefusedCallsOnly, APIView):
    """R14b: a courier event. Stored once under its `event_id`; never moves a shipment
    backwards. `scripts/omniva_sign.py` prints a signed example call. Calls with a refused
    signature are throttled (429 past the `webhook` rate)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [BoundedJSONParser]
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "webhook"

    @extend_schema(
        operation_id="webhooks_omniva",
        request=CourierEventInSerializer,
        parameters=SIGNATURE_HEADERS,
        responses={
            200: CourierEventResultSerializer,
            202: CourierEventResultSerializer,
            400: PROBLEM,
            401: PROBLEM,
        },
        examples=[
            OpenApiExample(
                "Delivered",
                value={
                    "event_id": "evt-0001",
                    "barcode": "CE123456789LV",
                    "event": "delivered",
                    "occurred_at": "2026-11-03T22:30:00Z",
                    "location": "Rīga Origo Omniva pakomāts",
                    "reason": "",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        body = request.body  # the raw bytes the signature covers
        refused = webhooks.signature_problem(
            secret=settings.OMNIVA_WEBHOOK_SECRET,
            timestamp=request.headers.get("X-Omniva-Timestamp"),
            signature=request.headers.get("X-Omniva-Signature"),
            body=body,
            now=time.time(),
        )
        if refused:
            self.throttle_refused_call(request)
            return Response(
                problem(401, code="invalid_signature", detail=refused),
                status=status.HTTP_401_UNAUTHORIZED,
                content_type=PROBLEM_JSON,
            )
        if len(body) > MAX_BODY_BYTES:
            raise ParseError("The body is too large for a courier event.")
        try:
            # Depth, NUL characters and number sizes are checked before anything is
            # stored (issue 14): a signed but hostile body is a 400, never a 500.
            data = loads_bounded(body, depth=MAX_DEPTH)
        except JSONRefused as exc:
            raise ParseError(f"The body is not acceptable JSON: {exc}") from exc
        serializer = CourierEventInSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        result = services.apply_courier_event(
            event=services.CourierEventData(
                event_id=values["event_id"],
                barcode=values["barcode"].strip().upper(),
                event=values["event"],
                occurred_at=values["occurred_at"],
                location=values.get("location") or "",
                reason=values.get("reason") or "",
                payload=data,
            )
        )
        code = status.HTTP_202_ACCEPTED if result.result == "unmatched" else status.HTTP_200_OK
        return Response({"result": result.result}, status=code)


class StaffShipmentCreateView(APIView):
    """R14a: staff register a shipment of a paid order: `{"barcode": "..."}` records one
    registered by hand, `{}` registers it with Omniva (in the background)."""

    permission_classes = [HasModelPermission]
    required_permission = "delivery.add_shipment"
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="staff_orders_shipments_create",
        request=ShipmentInSerializer,
        responses={
            201: ShipmentSerializer,
            400: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
            422: PROBLEM,
        },
    )
    def post(self, request, number: str):
        order_id = Order.objects.filter(number=number).values_list("pk", flat=True).first()
        if order_id is None:
            raise NotFound()
        serializer = ShipmentInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shipment = services.register_shipment(
            order_id=order_id,
            barcode=serializer.validated_data.get("barcode"),
            by=request.user,
        )
        # With eager Celery the Omniva registration has run after commit: read it back.
        shipment = Shipment.objects.select_related("order").get(pk=shipment.pk)
        return Response(ShipmentSerializer(shipment).data, status=status.HTTP_201_CREATED)


class StaffShipmentLabelView(APIView):
    """The shipment's label PDF, as Omniva returned it."""

    permission_classes = [HasModelPermission]
    required_permission = "delivery.view_shipment"

    @extend_schema(
        operation_id="staff_shipments_label",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 403: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, shipment_id: int):
        shipment = Shipment.objects.filter(pk=shipment_id).only("barcode", "label_pdf").first()
        if shipment is None or not shipment.label_pdf:
            raise NotFound("No label for this shipment.")
        response = HttpResponse(bytes(shipment.label_pdf), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="omniva-{shipment.barcode}.pdf"'
        return response
