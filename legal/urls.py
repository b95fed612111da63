from django.urls import path

from legal import web

app_name = "legal-web"

urlpatterns = [
    path("unsubscribe/", web.unsubscribe, name="unsubscribe"),
    path("consents/confirm/", web.confirm_consents, name="confirm-consents"),
]
