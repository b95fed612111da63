"""API routes of the returns app (included under /api/ by shop.urls)."""

from django.urls import path

from returns.api import claims, withdrawals

urlpatterns = [
    # Conformity claims (R23-R25).
    path(
        "orders/<str:number>/claims/",
        claims.OrderClaimCreateView.as_view(),
        name="order-claim-create",
    ),
    path("claims/<int:claim_id>/", claims.ClaimDetailView.as_view(), name="claim-detail"),
    # Withdrawals (R15-R22).
    path(
        "orders/<str:number>/withdrawals/",
        withdrawals.OrderWithdrawalCreateView.as_view(),
        name="order-withdrawals",
    ),
    path(
        "withdrawals/<int:pk>/",
        withdrawals.WithdrawalDetailView.as_view(),
        name="withdrawal-detail",
    ),
    path(
        "withdrawals/<int:pk>/proof-of-dispatch/",
        withdrawals.WithdrawalProofView.as_view(),
        name="withdrawal-proof",
    ),
]
