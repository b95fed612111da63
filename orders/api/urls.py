from django.urls import path

from orders.api import card_views, views

urlpatterns = [
    path("orders/", views.OrderCreateView.as_view(), name="order-create"),
    path("orders/<str:number>/", views.OrderDetailView.as_view(), name="order-detail"),
    path("orders/<str:number>/confirm/", views.OrderConfirmView.as_view(), name="order-confirm"),
    path("orders/<str:number>/cancel/", views.OrderCancelView.as_view(), name="order-cancel"),
    path(
        "orders/<str:number>/invoice.pdf",
        views.OrderInvoicePdfView.as_view(),
        name="order-invoice-pdf",
    ),
    path(
        "orders/<str:number>/lines/<int:line_id>/substitution/",
        views.SubstitutionDecisionView.as_view(),
        name="order-line-substitution",
    ),
    path(
        "orders/<str:number>/card-payment/",
        card_views.CardPaymentView.as_view(),
        name="order-card-payment",
    ),
    path("webhooks/stripe/", card_views.StripeWebhookView.as_view(), name="webhook-stripe"),
    path(
        "staff/orders/<str:number>/contact/",
        views.StaffContactView.as_view(),
        name="staff-order-contact",
    ),
]
