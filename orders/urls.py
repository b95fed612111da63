from django.urls import path

from orders import web

app_name = "orders-web"

urlpatterns = [
    path("<str:number>/", web.order_detail, name="detail"),
    path("<str:number>/confirm/", web.confirm_order, name="confirm"),
    path("<str:number>/invoice.pdf", web.invoice_pdf, name="invoice"),
]
