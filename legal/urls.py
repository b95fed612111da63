from django.urls import path

from legal import web
from shop.web_throttling import throttle_page

app_name = "legal-web"

urlpatterns = [
    path("unsubscribe/", throttle_page(web.unsubscribe), name="unsubscribe"),
    path("consents/confirm/", throttle_page(web.confirm_consents), name="confirm-consents"),
]
