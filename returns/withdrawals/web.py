"""The withdrawal button (R18, CRD Art 11a): server-rendered pages, no JavaScript needed.

    GET  /orders/{number}/withdraw/             the order, the customer's name and email
                                                 for confirmation, the lines, the IBAN;
                                                 "Withdraw from contract here"
    POST /orders/{number}/withdraw/             checks the form, shows the separate
                                                 confirmation step ("Confirm withdrawal")
    POST /orders/{number}/withdraw/confirm/     receives the statement (channel `web`)
    GET  /orders/{number}/withdrawals/{id}/     the receipt: what the email says
    POST /orders/{number}/withdrawals/{id}/proof/   proof of dispatch (R20, R21)

Reached by the signed link in the order emails, exchanged once for a page session and a
redirect to the clean URL (orders.web_access); the forms and links carry no token. Anyone
else gets 404. Available for the whole period, and clearly closed after it, with the deadline.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from orders.models import Order
from orders.services import refunds
from orders.web_access import open_order_page
from returns.models import Withdrawal, WithdrawalChannel
from returns.withdrawals import services
from returns.withdrawals.emails import acknowledgement_context
from shop.errors import InvalidInput, Refused
from shop.selectors import latvian_calendar


class WithdrawalForm(forms.Form):
    """The lines to choose (all of what is left, by default), the IBAN and the holder."""

    # R17, R21: optional. The refund goes back the way the money came (the card, or the
    # account the bank payment came from) unless the customer names another account.
    iban = forms.CharField(
        label=gettext_lazy("IBAN for the refund"),
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    account_holder = forms.CharField(
        label=gettext_lazy("Account holder"), max_length=140, required=False
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (optional, not required)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, lines=(), remaining=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_lines = [line for line in lines if (remaining or {}).get(line.pk)]
        self.remaining = remaining or {}
        for line in self.order_lines:
            left = self.remaining[line.pk]
            self.fields[f"line_{line.pk}"] = forms.BooleanField(required=False, initial=True)
            self.fields[f"qty_{line.pk}"] = forms.IntegerField(
                min_value=1, max_value=left, initial=left, required=False
            )

    def line_rows(self):
        """(order line, checkbox field, quantity field, remaining) for the template."""
        return [
            (line, self[f"line_{line.pk}"], self[f"qty_{line.pk}"], self.remaining[line.pk])
            for line in self.order_lines
        ]

    def clean_iban(self):
        raw = self.cleaned_data["iban"]
        if not raw.strip():
            return ""
        try:
            return refunds.normalise_iban(raw)
        except InvalidInput as exc:
            raise forms.ValidationError(
                _("This is not a valid IBAN: please check it (for example LV80BANK0000435195001)."),
                code="invalid_iban",
            ) from exc

    def clean(self):
        cleaned = super().clean()
        chosen = {}
        for line in self.order_lines:
            if cleaned.get(f"line_{line.pk}"):
                chosen[line.pk] = cleaned.get(f"qty_{line.pk}") or self.remaining[line.pk]
        if self.order_lines and not chosen:
            raise forms.ValidationError(
                _("Choose at least one product you withdraw from."), code="no_lines"
            )
        cleaned["chosen"] = chosen
        return cleaned

    def requested_lines(self) -> list[services.RequestedLine]:
        by_id = {line.pk: line for line in self.order_lines}
        return [
            services.RequestedLine(sku=by_id[line_id].sku, quantity=quantity)
            for line_id, quantity in self.cleaned_data["chosen"].items()
        ]


def _page_state(order: Order) -> dict:
    calendar = latvian_calendar()
    end = services.period_end(order, calendar)
    now = timezone.now()
    closed_reason = ""
    if not order.is_consumer:
        closed_reason = "not_a_consumer"
    elif order.is_cancelled:
        closed_reason = "cancelled"
    elif end is not None and now > end:
        closed_reason = "expired"
    remaining = services.remaining_quantities(order) if not closed_reason else {}
    if not closed_reason and not remaining:
        closed_reason = "nothing_left"
    return {
        "order": order,
        "period_end": end,
        "closed_reason": closed_reason,
        "remaining": remaining,
        "lines": services.withdrawable_lines(order),
        "withdrawals": list(order.withdrawals.order_by("received_at", "pk")),
    }


def _form(order: Order, state: dict, data=None) -> WithdrawalForm:
    return WithdrawalForm(
        data,
        lines=state["lines"],
        remaining=state["remaining"],
        initial={"account_holder": order.customer_name},
    )


@require_http_methods(["GET", "POST"])
def start(request: HttpRequest, number: str) -> HttpResponse:
    """Step 1: the statement's content. A POST checks it and shows step 2."""
    order, exchanged = open_order_page(request, number)
    if exchanged is not None:
        return exchanged
    state = _page_state(order)
    context = {**state}
    if state["closed_reason"]:
        return render(request, "returns/withdrawal_closed.html", context, status=200)
    form = _form(order, state, request.POST if request.method == "POST" else None)
    if request.method == "POST" and not request.POST.get("edit") and form.is_valid():
        by_id = {line.pk: line for line in form.order_lines}
        chosen = [(by_id[pk], quantity) for pk, quantity in form.cleaned_data["chosen"].items()]
        return render(
            request,
            "returns/withdrawal_confirm.html",
            {**context, "form": form, "chosen": chosen, "data": form.cleaned_data},
        )
    return render(request, "returns/withdrawal_form.html", {**context, "form": form})


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, number: str) -> HttpResponse:
    """Step 2 ("Confirm withdrawal"): the statement is received now (channel `web`)."""
    order, exchanged = open_order_page(request, number)
    if exchanged is not None:
        return exchanged
    start_url = reverse("withdrawals-web:start", args=[order.number])
    if request.method == "GET":
        return redirect(start_url)
    state = _page_state(order)
    if state["closed_reason"] not in ("", "nothing_left"):
        return render(request, "returns/withdrawal_closed.html", state)
    # Parsed against the whole lines, not what is left: a second click on "Confirm" (the
    # first one already took the goods) reaches the service, which answers with the
    # statement it received a moment ago.
    whole = {line.pk: line.quantity for line in state["lines"]}
    form = _form(order, {**state, "remaining": whole}, request.POST)
    error = None
    if form.is_valid():
        try:
            received = services.receive_withdrawal(
                order_id=order.pk,
                lines=form.requested_lines(),
                iban=form.cleaned_data["iban"],
                account_holder=form.cleaned_data["account_holder"],
                reason=form.cleaned_data.get("reason") or "",
                channel=WithdrawalChannel.WEB,
                recorded_by=request.user if request.user.is_authenticated else None,
            )
        except Refused as exc:
            error = exc.detail
        except InvalidInput as exc:
            error = "; ".join(e["message"] for e in exc.errors)
    if error is not None or not form.is_valid():
        state = _page_state(order)
        if state["closed_reason"]:
            return render(request, "returns/withdrawal_closed.html", state)
        shown = _form(order, state, request.POST)
        shown.is_valid()
        if error:
            shown.add_error(None, error)
        return render(request, "returns/withdrawal_form.html", {**state, "form": shown})
    url = reverse("withdrawals-web:receipt", args=[order.number, received.withdrawal.pk])
    return redirect(url)


def _withdrawal(order: Order, pk: int) -> Withdrawal:
    from django.http import Http404

    if not 0 < pk <= 2**63 - 1:
        raise Http404("No such withdrawal.")
    withdrawal = (
        Withdrawal.objects.select_related("order", "refund").filter(pk=pk, order=order).first()
    )
    if withdrawal is None:
        raise Http404("No such withdrawal.")
    return withdrawal


@require_http_methods(["GET"])
def receipt(request: HttpRequest, number: str, pk: int) -> HttpResponse:
    """The receipt: what the acknowledgement email says (R19), the return and the refund."""
    order, exchanged = open_order_page(request, number)
    if exchanged is not None:
        return exchanged
    withdrawal = _withdrawal(order, pk)
    return render(request, "returns/withdrawal_receipt.html", acknowledgement_context(withdrawal))


@require_http_methods(["POST"])
def upload_proof(request: HttpRequest, number: str, pk: int) -> HttpResponse:
    """R20, R21: a photo of the receipt or a PDF; it releases the held refund."""
    order, exchanged = open_order_page(request, number)
    if exchanged is not None:
        return exchanged
    withdrawal = _withdrawal(order, pk)
    try:
        services.attach_proof_of_dispatch(
            withdrawal_id=withdrawal.pk, upload=request.FILES.get("proof_of_dispatch")
        )
    except InvalidInput as exc:
        messages.error(request, exc.errors[0]["message"])
    except Refused as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request, _("Thank you: we received your proof of dispatch. The refund is on its way.")
        )
    url = reverse("withdrawals-web:receipt", args=[order.number, withdrawal.pk])
    return redirect(url)
