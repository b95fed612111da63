"""Customer and staff endpoints of orders: thin, they call services."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import get_language
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors
from orders.access import get_order_for
from orders.api.serializers import (
    OrderInSerializer,
    OrderSerializer,
    PlacedOrderSerializer,
    SubstitutionDecisionSerializer,
)
from orders.models import Order
from orders.services import lifecycle, substitution
from orders.services.checkout import (
    CheckoutLimits,
    CustomerData,
    DeliveryData,
    LineRequest,
    place_order,
)
from orders.services.idempotency import run_idempotent
from orders.services.invoicing_pdf import invoice_pdf_response
from shop.api.parsers import BoundedJSONParser
from shop.api.throttling import ScopedWindowThrottle, client_key

ORDER_TOKEN = OpenApiParameter(
    "X-Order-Token",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The order's access token (returned once at placement, and in email links).",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Same key and body: the same response, no second order; other body: 409.",
)
PROBLEM = OpenApiResponse(description="application/problem+json")


def customer_order(request, number: str, queryset=None) -> Order:
    return get_order_for(
        number,
        user=request.user,
        token=request.headers.get("X-Order-Token"),
        queryset=queryset,
    )


def order_response(order: Order, *, status_code: int = 200, serializer=OrderSerializer, **ctx):
    summary = selectors.order_summary(order)
    data = serializer(order, context={"summary": summary, **ctx}).data
    return Response(data, status=status_code)


class OrderTokenThrottleMixin:
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "token_guess"


class OrderCreateView(APIView):
    """Place an order (R1-R9). The contract is concluded when the order is submitted."""

    parser_classes = [BoundedJSONParser]
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "checkout"

    @extend_schema(
        operation_id="orders_create",
        request=OrderInSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: PlacedOrderSerializer, 400: PROBLEM, 409: PROBLEM, 422: PROBLEM},
    )
    def post(self, request):
        serializer = OrderInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def action():
            placed = place_order(
                customer=CustomerData(
                    first_name=data["customer"]["first_name"],
                    last_name=data["customer"]["last_name"],
                    email=data["customer"]["email"],
                    phone=data["customer"]["phone"],
                    is_consumer=data["customer"]["is_consumer"],
                    company_name=data["customer"].get("company_name") or "",
                    company_reg_no=data["customer"].get("company_reg_no") or "",
                ),
                capacity=data["capacity"],
                delivery=DeliveryData(
                    method=data["delivery"]["method"],
                    parcel_machine_id=data["delivery"].get("parcel_machine_id") or "",
                    **(data["delivery"].get("address") or {}),
                ),
                lines=[
                    LineRequest(sku=line["sku"], quantity=line["quantity"])
                    for line in data["lines"]
                ],
                accepted_terms_version=data["accepted_terms_version"],
                consents=data.get("consents") or {},
                user=request.user,
                language=get_language() or "lv",
                limits=CheckoutLimits.from_settings(client=client_key(request)),
            )
            order = selectors.with_placed_details(
                placed.order, lines=placed.lines, invoice=placed.invoice
            )
            body = PlacedOrderSerializer(
                order,
                context={
                    "summary": selectors.order_summary(order),
                    "access_token": placed.access_token,
                },
            ).data
            return status.HTTP_201_CREATED, body, order

        key = request.headers.get("Idempotency-Key")
        if key:
            # The key is scoped to its client: the signed-in user, else the client address
            # the rate limits use; another client's equal key is another key.
            if request.user.is_authenticated:
                client = f"user:{request.user.pk}"
            else:
                client = f"anonymous:{ScopedWindowThrottle().get_ident(request)}"
            result = run_idempotent(key=key[:255], client=client, data=request.data, action=action)
            response = Response(result.body, status=result.status)
            if result.replayed:
                response["Idempotent-Replayed"] = "true"
            return response
        with transaction.atomic():
            status_code, body, _order = action()
        return Response(body, status=status_code)


class OrderDetailView(OrderTokenThrottleMixin, APIView):
    @extend_schema(
        operation_id="orders_retrieve",
        parameters=[ORDER_TOKEN],
        responses={200: OrderSerializer, 404: PROBLEM},
    )
    def get(self, request, number: str):
        order = customer_order(request, number, queryset=selectors.order_with_details())
        return order_response(order)


class OrderConfirmView(OrderTokenThrottleMixin, APIView):
    """R12: the customer confirms the order; contact is established."""

    @extend_schema(
        operation_id="orders_confirm",
        request=None,
        parameters=[ORDER_TOKEN],
        responses={200: OrderSerializer, 404: PROBLEM, 422: PROBLEM},
    )
    def post(self, request, number: str):
        order = customer_order(request, number)
        lifecycle.establish_contact(order_id=order.pk)
        return order_response(selectors.order_with_details().get(pk=order.pk))


class OrderCancelView(OrderTokenThrottleMixin, APIView):
    """The customer cancels before dispatch: stock released, everything paid refunded."""

    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        parameters=[ORDER_TOKEN],
        responses={200: OrderSerializer, 404: PROBLEM, 422: PROBLEM},
    )
    def post(self, request, number: str):
        order = customer_order(request, number)
        lifecycle.cancel_by_customer(order_id=order.pk)
        return order_response(selectors.order_with_details().get(pk=order.pk))


class OrderInvoicePdfView(OrderTokenThrottleMixin, APIView):
    @extend_schema(
        operation_id="orders_invoice_pdf",
        parameters=[ORDER_TOKEN],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 404: PROBLEM},
    )
    def get(self, request, number: str):
        return invoice_pdf_response(customer_order(request, number))


class SubstitutionDecisionView(OrderTokenThrottleMixin, APIView):
    """R13: accept or decline the substitute offered for an unavailable line."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="orders_line_substitution",
        request=SubstitutionDecisionSerializer,
        parameters=[ORDER_TOKEN],
        responses={200: OrderSerializer, 400: PROBLEM, 404: PROBLEM, 422: PROBLEM},
    )
    def post(self, request, number: str, line_id: int):
        order = customer_order(request, number)
        serializer = SubstitutionDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        substitution.decide_substitution(
            order_id=order.pk, line_id=line_id, accept=serializer.validated_data["accept"]
        )
        return order_response(selectors.order_with_details().get(pk=order.pk))


class HasModelPermission(permissions.BasePermission):
    """Staff endpoints: a logged-in staff user with the view's `required_permission`."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and user.has_perm(view.required_permission)
        )


class StaffContactView(APIView):
    """R12: staff record a successful contact with the customer."""

    permission_classes = [HasModelPermission]
    required_permission = "orders.record_contact"

    @extend_schema(
        operation_id="staff_orders_contact",
        request=None,
        responses={200: OrderSerializer, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM},
    )
    def post(self, request, number: str):
        order = selectors.order_with_details().filter(number=number).first()
        if order is None:
            from rest_framework.exceptions import NotFound

            raise NotFound()
        lifecycle.establish_contact(order_id=order.pk)
        return order_response(selectors.order_with_details().get(pk=order.pk))
