from django.urls import path

from legal.api import views

app_name = "legal-api"

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="register"),
    path("auth/verify-email/", views.VerifyEmailView.as_view(), name="verify-email"),
    path("auth/login/", views.LoginView.as_view(), name="login"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/email-link/", views.EmailLinkView.as_view(), name="email-link"),
    path(
        "me/email-link/confirm/",
        views.EmailLinkConfirmView.as_view(),
        name="email-link-confirm",
    ),
    path("me/data/", views.DataExportView.as_view(), name="data"),
    path("me/recipients/", views.RecipientsView.as_view(), name="recipients"),
    path("me/requests/", views.RequestsView.as_view(), name="requests"),
    path("me/consents/", views.ConsentsView.as_view(), name="consents"),
    path(
        "me/consents/<str:purpose>/",
        views.ConsentDetailView.as_view(),
        name="consent-detail",
    ),
]
