"""Conformity claims in the API (R23-R25): thin views over `returns.claims.services`.

- `POST /api/orders/{number}/claims/`: the customer files a claim, as JSON, or as
  multipart/form-data with photos (`lines` then is a JSON text field).
- `GET /api/claims/{id}/`: the claim, its decisions and refunds.

Both are protected like the other order endpoints: the account that owns the order or the
order's `X-Order-Token`; anyone else gets 404.
"""

from __future__ import annotations

import json

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.access import can_access
from orders.api.views import ORDER_TOKEN, PROBLEM, OrderTokenThrottleMixin, customer_order
from returns.claims import photos, services
from returns.claims.selectors import claim_with_details
from returns.models.claims import Claim, ClaimDecision, ClaimLine, ClaimPhoto, Remedy
from shop.api.parsers import BoundedJSONParser, loads_bounded

MONEY = {"max_digits": 12, "decimal_places": 2}

# --- Input --------------------------------------------------------------------------------


class ClaimLineInSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000)


class ClaimInSerializer(serializers.Serializer):
    """A claim as JSON (no photos)."""

    lines = ClaimLineInSerializer(many=True, allow_empty=False, max_length=services.MAX_LINES)
    description = serializers.CharField(max_length=services.MAX_DESCRIPTION)
    discovered_on = serializers.DateField(
        help_text=_("The day the customer discovered the defect.")
    )
    remedy = serializers.ChoiceField(choices=Remedy.choices)
    iban = serializers.CharField(
        max_length=42,
        required=False,
        allow_blank=True,
        help_text=_("Optional: the account for any refund; otherwise the one the money came from."),
    )
    account_holder = serializers.CharField(max_length=140, required=False, allow_blank=True)


@extend_schema_field({"type": "string", "description": 'JSON: [{"sku": "...", "quantity": 1}]'})
class JSONLinesField(serializers.Field):
    """`lines` of a multipart claim: the same list as in JSON, sent as a text field."""

    def to_internal_value(self, data):
        if isinstance(data, list):
            value = data
        else:
            try:
                value = loads_bounded(data)  # depth-limited before parsing (issue 14)
            except (TypeError, ValueError) as exc:
                raise serializers.ValidationError(
                    _('Send the lines as JSON: [{"sku": "...", "quantity": 1}].'), code="invalid"
                ) from exc
        lines = ClaimLineInSerializer(
            data=value, many=True, allow_empty=False, max_length=services.MAX_LINES
        )
        lines.is_valid(raise_exception=True)
        return lines.validated_data

    def to_representation(self, value):
        return json.dumps(value)


class ClaimMultipartInSerializer(ClaimInSerializer):
    """A claim with up to 5 photos (JPEG, PNG or PDF, 5 MB each)."""

    lines = JSONLinesField()
    photos = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        max_length=photos.MAX_PHOTOS,
    )


# --- Output -------------------------------------------------------------------------------


class ClaimLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="order_line.sku")
    name = serializers.CharField(source="order_line.name_lv")
    unit_price = serializers.DecimalField(source="order_line.unit_price", **MONEY)
    allowance = serializers.DecimalField(**MONEY)
    refund_amount = serializers.DecimalField(**MONEY)

    class Meta:
        model = ClaimLine
        fields = ["sku", "name", "quantity", "unit_price", "allowance", "refund_amount"]


class ClaimPhotoSerializer(serializers.ModelSerializer):
    class Meta:
        model = ClaimPhoto
        fields = ["id", "content_type", "size", "uploaded_at"]


class ClaimRefundSerializer(serializers.Serializer):
    amount = serializers.DecimalField(**MONEY)
    status = serializers.CharField()
    due_date = serializers.DateField()


class ClaimDecisionSerializer(serializers.ModelSerializer):
    """Who decided stays internal; the customer sees what, when and why."""

    status = serializers.CharField(source="to_status")
    amount = serializers.DecimalField(allow_null=True, **MONEY)
    refund = ClaimRefundSerializer(allow_null=True)

    class Meta:
        model = ClaimDecision
        fields = ["kind", "status", "decided_at", "reason", "amount", "refund"]


class ClaimSerializer(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number")
    remedy = serializers.CharField(source="remedy_requested")
    lines = ClaimLineSerializer(many=True)
    photos = ClaimPhotoSerializer(many=True)
    decisions = ClaimDecisionSerializer(many=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Claim
        fields = [
            "id",
            "order",
            "status",
            "channel",
            "remedy",
            "description",
            "discovered_on",
            "received_at",
            "answer_deadline",
            "answered_at",
            "overdue",
            "late_notice",
            "is_warranty_claim",
            "closed_at",
            "lines",
            "photos",
            "decisions",
        ]

    def get_overdue(self, claim: Claim) -> bool:
        return claim.is_overdue(timezone.now())


# --- Views --------------------------------------------------------------------------------


def claim_response(claim_id: int, *, status_code: int = 200) -> Response:
    claim = claim_with_details().get(pk=claim_id)
    return Response(ClaimSerializer(claim).data, status=status_code)


class OrderClaimCreateView(OrderTokenThrottleMixin, APIView):
    """R23: file a conformity claim about delivered goods of the order."""

    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="orders_claims_create",
        request={
            "application/json": ClaimInSerializer,
            "multipart/form-data": ClaimMultipartInSerializer,
        },
        parameters=[ORDER_TOKEN],
        responses={201: ClaimSerializer, 400: PROBLEM, 404: PROBLEM, 422: PROBLEM},
        description=(
            "Refusals (422 problem+json, `code`): `not_delivered`; `claim_period_expired` "
            "(with `deadline`) after 2 years from delivery unless the product's commercial "
            "warranty still runs (then the claim is taken as a warranty claim); "
            "`not_a_consumer` for a business buyer outside a commercial warranty. "
            "A notice more than 2 months after discovery is taken and flagged (`late_notice`)."
        ),
    )
    def post(self, request, number: str):
        order = customer_order(request, number)
        multipart = not (request.content_type or "").startswith("application/json")
        if multipart:
            data = {key: request.data.get(key) for key in request.data if key != "photos"}
            data["photos"] = request.FILES.getlist("photos")
            serializer = ClaimMultipartInSerializer(data=data)
        else:
            serializer = ClaimInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        claim = services.receive_claim(
            order_id=order.pk,
            lines=[
                services.ClaimLineRequest(sku=line["sku"], quantity=line["quantity"])
                for line in data["lines"]
            ],
            description=data["description"],
            discovered_on=data["discovered_on"],
            remedy=data["remedy"],
            photos_in=data.get("photos") or [],
            iban=data.get("iban") or "",
            account_holder=data.get("account_holder") or "",
        )
        return claim_response(claim.pk, status_code=status.HTTP_201_CREATED)


class ClaimDetailView(OrderTokenThrottleMixin, APIView):
    @extend_schema(
        operation_id="claims_retrieve",
        parameters=[ORDER_TOKEN],
        responses={200: ClaimSerializer, 404: PROBLEM},
    )
    def get(self, request, claim_id: int):
        claim = claim_with_details().filter(pk=claim_id).first()
        if claim is None or not can_access(
            claim.order, user=request.user, token=request.headers.get("X-Order-Token")
        ):
            raise Http404("No such claim.")
        return Response(ClaimSerializer(claim).data)
