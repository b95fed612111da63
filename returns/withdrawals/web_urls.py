from django.urls import path

from returns.withdrawals import web
from shop.web_throttling import throttle_page

app_name = "withdrawals-web"

urlpatterns = [
    path("<str:number>/withdraw/", throttle_page(web.start), name="start"),
    path("<str:number>/withdraw/confirm/", throttle_page(web.confirm), name="confirm"),
    path("<str:number>/withdrawals/<int:pk>/", throttle_page(web.receipt), name="receipt"),
    path("<str:number>/withdrawals/<int:pk>/proof/", throttle_page(web.upload_proof), name="proof"),
]
