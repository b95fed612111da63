from django.urls import path

from orders import web
from shop.web_throttling import throttle_page

app_name = "orders-web"

urlpatterns = [
    path("<str:number>/", throttle_page(web.order_detail), name="detail"),
    path("<str:number>/confirm/", throttle_page(web.confirm_order), name="confirm"),
    path("<str:number>/invoice.pdf", throttle_page(web.invoice_pdf), name="invoice"),
]
