from django.urls import path

from returns.withdrawals import web

app_name = "withdrawals-web"

urlpatterns = [
    path("<str:number>/withdraw/", web.start, name="start"),
    path("<str:number>/withdraw/confirm/", web.confirm, name="confirm"),
    path("<str:number>/withdrawals/<int:pk>/", web.receipt, name="receipt"),
    path("<str:number>/withdrawals/<int:pk>/proof/", web.upload_proof, name="proof"),
]
