"""Withdrawals in the admin (R17, R20, R22): read, and act through the services.

- "Enter a withdrawal" (the add page): a statement received by email or phone, with the
  time it was received (channel `staff`, permission `returns.record_withdrawal`).
- "Goods received": the returned goods arrived (permission `returns.receive_returned_goods`).
- "Inspect": per line accepted, accepted with a deduction or rejected
  (permission `returns.inspect_withdrawal`); the refund is then ready for approval in the
  refund queue (orders/admin/refunds.py), which exports the SEPA file.

Nothing is edited by hand: every change goes through `returns.withdrawals.services`.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from orders.admin.orders import ReadOnlyHistoryAdmin, ReadOnlyInline, mask_iban, order_link
from orders.models import Order
from returns.models import (
    InspectionOutcome,
    RejectionGround,
    Withdrawal,
    WithdrawalChannel,
    WithdrawalLine,
    WithdrawalStatus,
)
from returns.withdrawals import services
from shop.errors import InvalidInput, Refused


def late_badge() -> str:
    return format_html(
        '<span class="withdrawal-late" style="background:#ba2121;color:#fff;'
        'border-radius:8px;padding:1px 7px;font-weight:bold;margin-left:4px;">{}</span>',
        _("returned late"),
    )


# --- Forms --------------------------------------------------------------------------------


class StaffWithdrawalForm(forms.Form):
    """R17: a statement received by email or phone, entered with its received time."""

    order_number = forms.CharField(label=_("Order number"), max_length=16)
    received_at = forms.SplitDateTimeField(
        label=_("Received at (Riga time)"),
        widget=admin.widgets.AdminSplitDateTime,
        help_text=_("When the customer's email arrived or the call took place."),
    )
    lines = forms.CharField(
        label=_("Withdrawn lines"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text=_("One per row: SKU and quantity, e.g. “KEU-001 1”. Empty: the whole order."),
    )
    # R17, R21: only when the customer named another account; otherwise the refund goes
    # back the way the money came.
    iban = forms.CharField(label=_("IBAN for the refund"), max_length=64, required=False)
    account_holder = forms.CharField(label=_("Account holder"), max_length=140, required=False)
    reason = forms.CharField(
        label=_("Reason given (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    staff_note = forms.CharField(
        label=_("How it was received"),
        max_length=300,
        required=False,
        help_text=_("For example: email to veikals@keune.lv, phone call."),
    )

    def clean_order_number(self):
        number = self.cleaned_data["order_number"].strip().upper()
        order = Order.objects.filter(number=number).first()
        if order is None:
            raise forms.ValidationError(_("No such order."), code="not_found")
        self.order = order
        return number

    def clean_lines(self):
        requested = []
        for row_no, row in enumerate((self.cleaned_data.get("lines") or "").splitlines(), 1):
            parts = row.split()
            if not parts:
                continue
            try:
                quantity = int(parts[1]) if len(parts) > 1 else 1
            except ValueError as exc:
                raise forms.ValidationError(
                    _("Row %(n)d: the quantity is not a number.") % {"n": row_no}
                ) from exc
            if len(parts) > 2 or quantity < 1:
                raise forms.ValidationError(
                    _("Row %(n)d: write the SKU and a quantity of at least 1.") % {"n": row_no}
                )
            requested.append(services.RequestedLine(sku=parts[0], quantity=quantity))
        return requested


class GoodsReceivedForm(forms.Form):
    received_at = forms.SplitDateTimeField(
        label=_("Goods received at (Riga time)"), widget=admin.widgets.AdminSplitDateTime
    )


class LineInspectionForm(forms.Form):
    """R22: one returned line."""

    line_id = forms.IntegerField(widget=forms.HiddenInput)
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=InspectionOutcome.choices, widget=forms.RadioSelect
    )
    deduction = forms.DecimalField(
        label=_("Deduction, EUR"), max_digits=12, decimal_places=2, min_value=0, required=False
    )
    rejection_ground = forms.ChoiceField(
        label=_("Rejected because"),
        choices=[("", "—"), *RejectionGround.choices],
        required=False,
    )
    note = forms.CharField(
        label=_("Reason"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"size": 50}),
    )


LineInspectionFormSet = forms.formset_factory(LineInspectionForm, extra=0)


def _field_errors(form: forms.Form, exc: Exception) -> None:
    if isinstance(exc, InvalidInput):
        for error in exc.errors:
            form.add_error(None, f"{error['field']}: {error['message']}")
    elif isinstance(exc, Refused):
        facts = ", ".join(f"{key} {value}" for key, value in exc.facts.items())
        form.add_error(None, f"{exc.detail} ({exc.code}{': ' + facts if facts else ''})")


# --- The admin ------------------------------------------------------------------------------


class WithdrawalLineInline(ReadOnlyInline):
    model = WithdrawalLine
    fields = [
        "order_line",
        "quantity",
        "unit_price",
        "sealed_hygiene",
        "outcome",
        "deduction",
        "rejection_ground",
        "inspection_note",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_line")

    @admin.display(description=_("sealed hygiene"), boolean=True)
    def sealed_hygiene(self, obj: WithdrawalLine) -> bool:
        return obj.order_line.sealed_hygiene


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "id",
        "order_number",
        "status",
        "channel",
        "received_at",
        "return_deadline_column",
        "goods_received_at",
        "refund_amount",
        "refund_due_date",
        "refund_status",
    ]
    list_display_links = ["id"]
    list_select_related = ["order", "refund"]
    list_filter = ["status", "channel", "returned_late", "before_dispatch"]
    search_fields = ["order__number", "order__email", "return_code"]
    ordering = ["-received_at", "-pk"]
    date_hierarchy = "received_at"
    actions = ["goods_received_now"]
    inlines = [WithdrawalLineInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order_link",
                    "status",
                    "channel",
                    "received_at",
                    "recorded_at",
                    "recorded_by",
                    "staff_note",
                    "reason",
                    "next_step",
                ]
            },
        ),
        (
            _("Deadlines"),
            {"fields": ["period_end", "before_dispatch", "return_deadline", "refund_due_date"]},
        ),
        (
            _("Return"),
            {
                "fields": [
                    "return_code",
                    "proof_link",
                    "proof_uploaded_at",
                    "goods_received_at",
                    "returned_late",
                    "inspected_at",
                    "inspected_by",
                ]
            },
        ),
        (
            _("Refund"),
            {
                "fields": [
                    "refund_amount",
                    "includes_delivery_fee",
                    "refund_link",
                    "account",
                    "account_holder",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def has_add_permission(self, request):
        return request.user.has_perm("returns.record_withdrawal")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # Columns and read-only fields.

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: Withdrawal) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("order"))
    def order_link(self, obj: Withdrawal) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("return deadline"), ordering="return_deadline")
    def return_deadline_column(self, obj: Withdrawal) -> str:
        if obj.return_deadline is None:
            return "-"
        text = timezone.localtime(obj.return_deadline).strftime("%Y-%m-%d")
        return format_html("{}{}", text, late_badge()) if obj.returned_late else text

    @admin.display(description=_("refund"))
    def refund_status(self, obj: Withdrawal) -> str:
        return obj.refund.get_status_display() if obj.refund else "-"

    @admin.display(description=_("refund"))
    def refund_link(self, obj: Withdrawal) -> str:
        if obj.refund is None:
            return "-"
        url = reverse("admin:orders_refund_change", args=[obj.refund_id])
        return format_html(
            '<a href="{}">{} EUR · {}</a>', url, obj.refund.amount, obj.refund.get_status_display()
        )

    @admin.display(description=_("account"))
    def account(self, obj: Withdrawal) -> str:
        return mask_iban(obj.iban)

    @admin.display(description=_("proof of dispatch"))
    def proof_link(self, obj: Withdrawal) -> str:
        if not obj.proof_of_dispatch:
            return "-"
        url = reverse("admin:returns_withdrawal_proof", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.proof_content_type)

    @admin.display(description=_("next step"))
    def next_step(self, obj: Withdrawal) -> str:
        url = reverse("admin:returns_withdrawal_inspect", args=[obj.pk])
        if obj.status in (WithdrawalStatus.RECEIVED, WithdrawalStatus.GOODS_IN_TRANSIT):
            if obj.before_dispatch:
                return "-"
            return format_html('<a class="button" href="{}">{}</a>', url, _("Goods received…"))
        if obj.status == WithdrawalStatus.GOODS_RECEIVED:
            return format_html(
                '<a class="button" href="{}">{}</a>', url, _("Inspect returned goods…")
            )
        if obj.refund_id:
            refund_url = reverse("admin:orders_refund_changelist")
            return format_html(
                '<a href="{}?status__exact=ready">{}</a>', refund_url, _("Refund queue")
            )
        return "-"

    # Pages.

    def get_urls(self):
        return [
            path(
                "<path:object_id>/inspect/",
                self.admin_site.admin_view(self.inspect_view),
                name="returns_withdrawal_inspect",
            ),
            path(
                "<path:object_id>/proof/",
                self.admin_site.admin_view(self.proof_view),
                name="returns_withdrawal_proof",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """Staff enter a statement received by email or phone (channel `staff`)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"received_at": timezone.localtime()}
        form = StaffWithdrawalForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                received = services.receive_withdrawal(
                    order_id=form.order.pk,
                    lines=data["lines"],
                    iban=data["iban"],
                    account_holder=data["account_holder"],
                    reason=data.get("reason") or "",
                    channel=WithdrawalChannel.STAFF,
                    received_at=_aware(data["received_at"]),
                    recorded_by=request.user,
                    staff_note=data.get("staff_note") or "",
                )
            except (Refused, InvalidInput) as exc:
                _field_errors(form, exc)
            else:
                self.message_user(
                    request,
                    _("Withdrawal recorded; the customer has been sent the acknowledgement."),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:returns_withdrawal_change", args=[received.withdrawal.pk])
                )
        return TemplateResponse(
            request,
            "admin/returns/withdrawal/enter.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Enter a withdrawal received by email or phone"),
                "opts": self.model._meta,
                "form": form,
                "media": self.media + form.media,
            },
        )

    def inspect_view(self, request, object_id):
        """Goods received (if not yet), then the inspection of every line (R22)."""
        withdrawal = self.get_object(request, unquote(object_id))
        if withdrawal is None:
            raise Http404(_("No such withdrawal."))
        change_url = reverse("admin:returns_withdrawal_change", args=[withdrawal.pk])
        lines = list(withdrawal.lines.select_related("order_line").order_by("pk"))
        goods_form = None
        formset = None
        error = ""
        if withdrawal.awaiting_goods and not withdrawal.before_dispatch:
            if not request.user.has_perm("returns.receive_returned_goods"):
                raise PermissionDenied
            goods_form = GoodsReceivedForm(
                request.POST or None, initial={"received_at": timezone.localtime()}
            )
            if request.method == "POST" and goods_form.is_valid():
                try:
                    services.record_goods_received(
                        withdrawal_id=withdrawal.pk,
                        at=_aware(goods_form.cleaned_data["received_at"]),
                        by=request.user,
                    )
                except Refused as exc:
                    _field_errors(goods_form, exc)
                else:
                    self.message_user(request, _("Goods recorded as received."), messages.SUCCESS)
                    return HttpResponseRedirect(request.path)
        elif withdrawal.status == WithdrawalStatus.GOODS_RECEIVED:
            if not request.user.has_perm("returns.inspect_withdrawal"):
                raise PermissionDenied
            initial = [
                {"line_id": line.pk, "outcome": InspectionOutcome.ACCEPTED} for line in lines
            ]
            formset = LineInspectionFormSet(request.POST or None, initial=initial, prefix="lines")
            if request.method == "POST" and formset.is_valid():
                results = {
                    form.cleaned_data["line_id"]: services.LineInspection(
                        outcome=form.cleaned_data["outcome"],
                        deduction=form.cleaned_data.get("deduction") or 0,
                        rejection_ground=form.cleaned_data.get("rejection_ground") or "",
                        note=form.cleaned_data.get("note") or "",
                    )
                    for form in formset.forms
                }
                try:
                    done = services.inspect_withdrawal(
                        withdrawal_id=withdrawal.pk, results=results, by=request.user
                    )
                except (Refused, InvalidInput) as exc:
                    error = _error_text(exc)
                else:
                    self.message_user(
                        request,
                        _(
                            "Inspection recorded: the refund of %(amount)s EUR is ready for "
                            "approval in the refund queue."
                        )
                        % {"amount": done.refund_amount}
                        if done.refund_amount
                        else _("Inspection recorded: nothing is refunded."),
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(change_url)
        else:
            self.message_user(
                request, _("Nothing to receive or inspect for this withdrawal."), messages.INFO
            )
            return HttpResponseRedirect(change_url)
        rows = list(zip(lines, formset.forms, strict=True)) if formset is not None else []
        return TemplateResponse(
            request,
            "admin/returns/withdrawal/inspect.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Withdrawal #%(pk)s of order %(number)s")
                % {"pk": withdrawal.pk, "number": withdrawal.order.number},
                "opts": self.model._meta,
                "original": withdrawal,
                "withdrawal": withdrawal,
                "lines": lines,
                "goods_form": goods_form,
                "formset": formset,
                "rows": rows,
                "error": error,
                "change_url": change_url,
                "media": self.media + (goods_form.media if goods_form else forms.Media()),
            },
        )

    def proof_view(self, request, object_id):
        from django.http import FileResponse

        withdrawal = self.get_object(request, unquote(object_id))
        if withdrawal is None or not withdrawal.proof_of_dispatch:
            raise Http404(_("No proof of dispatch."))
        if not self.has_view_permission(request, withdrawal):
            raise PermissionDenied  # issue 14: staff without the view permission
        extension = withdrawal.proof_of_dispatch.name.rsplit(".", 1)[-1]
        response = FileResponse(
            withdrawal.proof_of_dispatch.open("rb"),
            as_attachment=True,  # never inline: the browser does not render it
            filename=f"proof-{withdrawal.pk}.{extension}",
            content_type=withdrawal.proof_content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    # Actions.

    def has_receive_goods_permission(self, request) -> bool:
        return request.user.has_perm("returns.receive_returned_goods")

    @admin.action(description=_("Record the goods as received now"), permissions=["receive_goods"])
    def goods_received_now(self, request, queryset):
        done = 0
        for withdrawal_id in queryset.filter(
            status__in=[WithdrawalStatus.RECEIVED, WithdrawalStatus.GOODS_IN_TRANSIT],
            before_dispatch=False,
        ).values_list("pk", flat=True):
            services.record_goods_received(withdrawal_id=withdrawal_id, by=request.user)
            done += 1
        self.message_user(
            request,
            ngettext(
                "%(n)d withdrawal: goods recorded as received.",
                "%(n)d withdrawals: goods recorded as received.",
                done,
            )
            % {"n": done},
            messages.SUCCESS if done else messages.WARNING,
        )


def _aware(value: datetime) -> datetime:
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _error_text(exc: Exception) -> str:
    if isinstance(exc, InvalidInput):
        return "; ".join(error["message"] for error in exc.errors)
    return getattr(exc, "detail", str(exc))
