from django.urls import path

from legal import web

app_name = "legal-web"

urlpatterns = [
    path("unsubscribe/", web.unsubscribe, name="unsubscribe"),
]
