"""The withdrawal endpoints of DESIGN.md section 10: thin, they call the services.

    POST /api/orders/{number}/withdrawals/           a statement (R17)
    GET  /api/withdrawals/{id}/                      its state, deadlines and refund
    POST /api/withdrawals/{id}/proof-of-dispatch/    proof of having sent the goods (R21)

Authentication like every customer endpoint: the account that owns the order, or the
order's token in `X-Order-Token`; anyone else gets 404.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.access import can_access
from orders.api.views import (
    IDEMPOTENCY_KEY,
    ORDER_TOKEN,
    PROBLEM,
    OrderTokenThrottleMixin,
    customer_order,
)
from orders.services.idempotency import run_idempotent
from returns.models import Withdrawal, WithdrawalChannel
from returns.withdrawals import services
from shop.api.parsers import BoundedJSONParser

MONEY = {"max_digits": 12, "decimal_places": 2}
MAX_ID = 2**63 - 1  # a bigger id in the path is no withdrawal (and no database error)


# --- Input -------------------------------------------------------------------------------


class WithdrawalLineInSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=999)


class WithdrawalInSerializer(serializers.Serializer):
    lines = WithdrawalLineInSerializer(
        many=True,
        required=False,
        allow_empty=True,
        max_length=200,
        help_text="Lines and quantities withdrawn; empty (or left out): the whole order.",
    )
    iban = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text=(
            "R17, R21: only when the refund cannot go back the way the money came or the "
            "customer wants it on another account; checked with MOD-97."
        ),
    )
    account_holder = serializers.CharField(
        max_length=140, required=False, allow_blank=True, default=""
    )
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="Optional, never required.",
    )


class ProofInSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A photo (JPEG, PNG, WebP) or a PDF, at most 10 MB.")


# --- Output ------------------------------------------------------------------------------


class WithdrawnLineSerializer(serializers.Serializer):
    sku = serializers.CharField(source="order_line.sku")
    name = serializers.CharField(source="order_line.name_lv")
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(**MONEY)
    outcome = serializers.CharField(allow_blank=True, help_text="R22, after inspection.")
    deduction = serializers.DecimalField(**MONEY)


class WithdrawalRefundSerializer(serializers.Serializer):
    amount = serializers.DecimalField(**MONEY)
    status = serializers.CharField()
    due_date = serializers.DateField()


class WithdrawalCreatedSerializer(serializers.ModelSerializer):
    """The 201 answer of DESIGN.md section 10."""

    class Meta:
        model = Withdrawal
        fields = [
            "id",
            "status",
            "received_at",
            "return_deadline",
            "refund_due_date",
            "refund_amount",
            "return_code",
        ]


class WithdrawalSerializer(serializers.ModelSerializer):
    order = serializers.SlugRelatedField(slug_field="number", read_only=True)
    lines = WithdrawnLineSerializer(many=True, read_only=True)
    refund = serializers.SerializerMethodField()

    class Meta:
        model = Withdrawal
        fields = [
            "id",
            "order",
            "status",
            "channel",
            "received_at",
            "period_end",
            "before_dispatch",
            "return_deadline",
            "return_code",
            "refund_due_date",
            "refund_amount",
            "includes_delivery_fee",
            "refund",
            "lines",
            "account_holder",
            "reason",
            "proof_uploaded_at",
            "goods_received_at",
            "returned_late",
            "inspected_at",
        ]

    @extend_schema_field(WithdrawalRefundSerializer(allow_null=True))
    def get_refund(self, withdrawal: Withdrawal):
        refund = withdrawal.refund
        if refund is None:
            return None
        return WithdrawalRefundSerializer(refund).data


def withdrawal_for(request, pk: int) -> Withdrawal:
    """The withdrawal, if the caller may see its order (else 404, never a hint)."""
    if not 0 < pk <= MAX_ID:
        raise Http404("No such withdrawal.")
    withdrawal = (
        Withdrawal.objects.select_related("order", "refund")
        .prefetch_related("lines__order_line")
        .filter(pk=pk)
        .first()
    )
    if withdrawal is None or not can_access(
        withdrawal.order, user=request.user, token=request.headers.get("X-Order-Token")
    ):
        raise Http404("No such withdrawal.")
    return withdrawal


# --- Views -------------------------------------------------------------------------------


class OrderWithdrawalCreateView(OrderTokenThrottleMixin, APIView):
    """R17: a withdrawal statement. Before delivery too (R16); after the period: 422
    `withdrawal_period_expired` with `deadline`. A double submit creates one withdrawal."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="orders_withdrawals_create",
        request=WithdrawalInSerializer,
        parameters=[ORDER_TOKEN, IDEMPOTENCY_KEY],
        responses={
            201: WithdrawalCreatedSerializer,
            400: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
            422: PROBLEM,
        },
    )
    def post(self, request, number: str):
        order = customer_order(request, number)
        serializer = WithdrawalInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def action():
            received = services.receive_withdrawal(
                order_id=order.pk,
                lines=[
                    services.RequestedLine(sku=line["sku"], quantity=line["quantity"])
                    for line in data.get("lines") or []
                ],
                iban=data["iban"],
                account_holder=data["account_holder"],
                reason=data.get("reason") or "",
                channel=WithdrawalChannel.API,
                recorded_by=request.user if request.user.is_authenticated else None,
            )
            body = WithdrawalCreatedSerializer(received.withdrawal).data
            return status.HTTP_201_CREATED, dict(body), order, received.created

        key = request.headers.get("Idempotency-Key")
        if key:
            result = run_idempotent(
                key=f"withdrawal:{order.number}:{key}"[:255],
                data=request.data,
                action=lambda: action()[:3],
            )
            response = Response(result.body, status=result.status)
            if result.replayed:
                response["Idempotent-Replayed"] = "true"
            return response
        with transaction.atomic():
            status_code, body, _order, created = action()
        response = Response(body, status=status_code)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


class WithdrawalDetailView(OrderTokenThrottleMixin, APIView):
    @extend_schema(
        operation_id="withdrawals_retrieve",
        parameters=[ORDER_TOKEN],
        responses={200: WithdrawalSerializer, 404: PROBLEM},
    )
    def get(self, request, pk: int):
        return Response(WithdrawalSerializer(withdrawal_for(request, pk)).data)


class WithdrawalProofView(OrderTokenThrottleMixin, APIView):
    """R20, R21: proof of having sent the goods back; it releases the held refund."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="withdrawals_proof_of_dispatch",
        request={"multipart/form-data": ProofInSerializer},
        parameters=[ORDER_TOKEN],
        responses={200: WithdrawalSerializer, 400: PROBLEM, 404: PROBLEM, 422: PROBLEM},
    )
    def post(self, request, pk: int):
        withdrawal = withdrawal_for(request, pk)
        upload = request.FILES.get("file")
        services.attach_proof_of_dispatch(withdrawal_id=withdrawal.pk, upload=upload)
        return Response(WithdrawalSerializer(withdrawal_for(request, pk)).data)
