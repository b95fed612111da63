"""Card payment through Stripe (R11s): the customer's PaymentIntent and Stripe's webhook.

Thin: they translate HTTP and call `orders.services.card_payments`.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.api.views import ORDER_TOKEN, PROBLEM, OrderTokenThrottleMixin, customer_order
from orders.models import StripeEventResult
from orders.services import card_payments
from shop.api.throttling import ScopedWindowThrottle


class CardPaymentSerializer(serializers.Serializer):
    client_secret = serializers.CharField(
        help_text="For Stripe.js (confirmCardPayment) in the customer's browser."
    )
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="The amount still open, EUR."
    )
    currency = serializers.CharField()
    payment_intent = serializers.CharField(help_text="The Stripe PaymentIntent id.")


class StripeWebhookResultSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=StripeEventResult.choices)


STRIPE_SIGNATURE = OpenApiParameter(
    "Stripe-Signature",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="Stripe's signature of the raw body (`t=...,v1=...`).",
)


class CardPaymentView(OrderTokenThrottleMixin, APIView):
    """R11s: pay the invoice by card. A PaymentIntent for the amount still open; the
    order is paid when Stripe's signed `payment_intent.succeeded` event arrives."""

    @extend_schema(
        operation_id="orders_card_payment",
        request=None,
        parameters=[ORDER_TOKEN],
        responses={
            200: CardPaymentSerializer,
            404: PROBLEM,
            422: OpenApiResponse(
                description="application/problem+json: `order_paid`, `order_cancelled`, "
                "`card_payments_unavailable`, `amount_below_card_minimum`, "
                "`card_payment_refused`"
            ),
        },
    )
    def post(self, request, number: str):
        order = customer_order(request, number)
        started = card_payments.start_card_payment(order_id=order.pk)
        return Response(CardPaymentSerializer(started).data)


class StripeWebhookView(APIView):
    """Stripe events: the signature is checked with the Stripe library (400 when wrong or
    older than 5 minutes); each event is stored and applied once."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "webhook"

    @extend_schema(
        operation_id="webhooks_stripe",
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[STRIPE_SIGNATURE],
        responses={200: StripeWebhookResultSerializer, 400: PROBLEM},
    )
    def post(self, request):
        received = card_payments.receive_stripe_event(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
        return Response({"result": received.result})
