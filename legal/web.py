"""The unsubscribe page (R31, AP4.3): reached from every marketing email, no login, no
JavaScript. A GET shows the button (link scanners must not unsubscribe anyone), the POST
withdraws the consent at once. The signed token is the authority, so the POST needs no
CSRF token (one-click unsubscribe from a mail client works too).

The consent confirmation page (R31, double opt-in) works the same way: the GET shows the
button, the POST confirms."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from legal.services import consents


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest) -> HttpResponse:
    token = request.POST.get("token") or request.GET.get("token") or ""
    consent = consents.consent_for_token(token)
    if consent is None:
        return render(request, "legal/unsubscribe.html", {"invalid": True}, status=404)
    context = {"token": token, "purpose": consent.get_purpose_display(), "done": False}
    if request.method == "POST":
        consents.unsubscribe(token=token)
        context["done"] = True
    return render(request, "legal/unsubscribe.html", context)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def confirm_consents(request: HttpRequest) -> HttpResponse:
    token = request.POST.get("token") or request.GET.get("token") or ""
    pending = list(consents.pending_for_token(token))
    if not pending:
        return render(request, "legal/confirm_consents.html", {"invalid": True}, status=404)
    purposes = ", ".join(sorted({str(c.get_purpose_display()) for c in pending}))
    context = {"token": token, "purposes": purposes, "done": False}
    if request.method == "POST":
        consents.confirm_consents(token=token)
        context["done"] = True
    return render(request, "legal/confirm_consents.html", context)
