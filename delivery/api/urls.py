from django.urls import path

from delivery.api import courier_views

urlpatterns = [
    path("webhooks/omniva/", courier_views.OmnivaWebhookView.as_view(), name="webhook-omniva"),
    path(
        "staff/orders/<str:number>/shipments/",
        courier_views.StaffShipmentCreateView.as_view(),
        name="staff-order-shipments",
    ),
    path(
        "staff/shipments/<int:shipment_id>/label.pdf",
        courier_views.StaffShipmentLabelView.as_view(),
        name="staff-shipment-label",
    ),
]
