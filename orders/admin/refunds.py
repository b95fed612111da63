"""The staff refund queue (R21) and the SEPA files it produces.

A clerk works the queue here: filter what is due or overdue, correct an account while a
refund is not yet approved, approve (own permission), export the approved bank refunds
into a SEPA file for the bank, then mark them settled or failed. Every action calls a
service in `orders.services`; refunds are never created, and their state never edited,
by hand.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from orders.admin.orders import (
    ReadOnlyHistoryAdmin,
    ReadOnlyInline,
    action_page,
    mask_iban,
    order_link,
)
from orders.models import Refund, RefundDestination, RefundStatus, SepaExport
from orders.services import card_payments
from orders.services import refunds as refund_services
from orders.services.sepa import export_sepa_refunds, exportable_refunds, outside_sepa
from shop.errors import InvalidInput, Refused
from shop.selectors import today_in_riga

OPEN_STATUSES = [RefundStatus.PENDING, RefundStatus.READY, RefundStatus.APPROVED]
FAILABLE_STATUSES = [RefundStatus.APPROVED, RefundStatus.SENT, RefundStatus.SETTLED]
ACCOUNT_FIELDS = ["iban", "account_holder"]


def sepa_file_response(export: SepaExport) -> HttpResponse:
    response = HttpResponse(export.content, content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    return response


def overdue_badge() -> str:
    return format_html(
        '<span class="refund-overdue" style="background:#ba2121;color:#fff;'
        'border-radius:8px;padding:1px 7px;font-weight:bold;margin-left:4px;">{}</span>',
        _("overdue"),
    )


class OverdueFilter(admin.SimpleListFilter):
    """R21: refunds not yet sent whose due date has passed (Riga time)."""

    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        overdue = {"status__in": OPEN_STATUSES, "due_date__lt": today_in_riga()}
        if self.value() == "yes":
            return queryset.filter(**overdue)
        if self.value() == "no":
            return queryset.exclude(**overdue)
        return queryset


class RefundAccountForm(forms.ModelForm):
    """Only the account of a bank refund not yet approved can be corrected."""

    class Meta:
        model = Refund
        fields = ACCOUNT_FIELDS

    def clean_iban(self):
        try:
            return refund_services.normalise_iban(self.cleaned_data.get("iban", ""))
        except InvalidInput as exc:
            raise forms.ValidationError(exc.errors[0]["message"], code="invalid_iban") from exc

    def clean_account_holder(self):
        holder = (self.cleaned_data.get("account_holder") or "").strip()
        if not holder:
            raise forms.ValidationError(_("The account holder is required."), code="required")
        return holder


class FailRefundsForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=300,
        help_text=_("What the bank said, for example: account closed, wrong account holder."),
        widget=forms.TextInput(attrs={"size": 60}),
    )


def account_editable(refund: Refund | None) -> bool:
    return (
        refund is not None
        and refund.status in refund_services.ACCOUNT_EDITABLE_STATUSES
        and refund.destination == RefundDestination.IBAN
    )


@admin.register(Refund)
class RefundAdmin(ReadOnlyHistoryAdmin):
    form = RefundAccountForm
    list_display = [
        "id",
        "order_number",
        "amount",
        "reason",
        "status",
        "due",
        "destination",
        "account",
        "created_at",
    ]
    list_display_links = ["id"]
    list_select_related = ["order"]
    list_filter = ["status", "reason", OverdueFilter, "destination"]
    search_fields = [
        "order__number",
        "order__invoices__number",
        "order__email",
        "external_id",
    ]
    ordering = ["due_date", "pk"]
    actions = ["approve", "export_sepa", "send_card_refunds", "mark_settled", "mark_failed"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order_link",
                    "amount",
                    "reason",
                    "status",
                    "due",
                    "note",
                ]
            },
        ),
        (_("Destination"), {"fields": ["destination", "iban", "account_holder", "bic", "payment"]}),
        (
            _("Progress"),
            {
                "fields": [
                    "created_at",
                    "approved_at",
                    "approved_by",
                    "sent_at",
                    "sepa_export",
                    "external_id",
                    "settled_at",
                    "failed_at",
                    "failure_reason",
                    "overdue_flagged_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")

    def get_readonly_fields(self, request, obj=None):
        names = [name for _title, options in self.fieldsets for name in options["fields"]]
        if account_editable(obj):
            return [name for name in names if name not in ACCOUNT_FIELDS]
        return names

    def has_add_permission(self, request):
        return False  # refunds come from services (create_refund), never by hand

    def has_change_permission(self, request, obj=None):
        """Only the account of a bank refund not yet approved; the rest is view-only."""
        if obj is not None and not account_editable(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Through the service, which re-checks the state under the row lock."""
        if not account_editable(obj):
            raise PermissionDenied
        try:
            refund_services.update_refund_account(
                refund_id=obj.pk,
                iban=form.cleaned_data["iban"],
                account_holder=form.cleaned_data["account_holder"],
            )
        except (Refused, InvalidInput) as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def save_related(self, request, form, formsets, change):
        pass

    # Columns.

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: Refund) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("order"))
    def order_link(self, obj: Refund) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("due date"), ordering="due_date")
    def due(self, obj: Refund) -> str:
        if obj.is_overdue:
            return format_html("{}{}", obj.due_date.isoformat(), overdue_badge())
        return obj.due_date.isoformat()

    @admin.display(description=_("account"))
    def account(self, obj: Refund) -> str:
        if obj.destination == RefundDestination.CARD:
            return str(_("card"))
        return mask_iban(obj.iban)

    # Actions: thin, each calls a refund service.

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("orders.approve_refund")

    @admin.action(description=_("Approve selected refunds"), permissions=["approve"])
    def approve(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        approved = refund_services.approve_refunds(refund_ids=selected, by=request.user)
        if approved:
            self.message_user(
                request,
                ngettext("%(n)d refund approved.", "%(n)d refunds approved.", len(approved))
                % {"n": len(approved)},
                messages.SUCCESS,
            )
        left = len(selected) - len(approved)
        if left:
            self.message_user(
                request,
                ngettext(
                    "%(n)d refund was not approved: only refunds ready for approval, "
                    "with an IBAN for bank transfers, can be approved.",
                    "%(n)d refunds were not approved: only refunds ready for approval, "
                    "with an IBAN for bank transfers, can be approved.",
                    left,
                )
                % {"n": left},
                messages.WARNING,
            )

    @admin.action(description=_("Export approved refunds to a SEPA file"), permissions=["change"])
    def export_sepa(self, request, queryset):
        skipped = outside_sepa(queryset.filter(pk__in=exportable_refunds().values("pk")))
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(n)d refund not exported: its IBAN is outside the SEPA zone (%(ids)s).",
                    "%(n)d refunds not exported: their IBANs are outside the SEPA zone (%(ids)s).",
                    len(skipped),
                )
                % {"n": len(skipped), "ids": ", ".join(f"#{r.pk}" for r in skipped)},
                messages.WARNING,
            )
        try:
            export = export_sepa_refunds(
                by=request.user, refund_ids=list(queryset.values_list("pk", flat=True))
            )
        except Refused as exc:
            self.message_user(request, f"{exc.detail} {exc.facts.get('error', '')}", messages.ERROR)
            return None
        if export is None:
            self.message_user(
                request,
                _("None of the selected refunds is an approved bank transfer: nothing exported."),
                messages.WARNING,
            )
            return None
        self.message_user(
            request,
            ngettext(
                "%(n)d refund exported to %(file)s (EUR %(total)s); it is now sent.",
                "%(n)d refunds exported to %(file)s (EUR %(total)s); they are now sent.",
                export.count,
            )
            % {"n": export.count, "file": export.file_name, "total": export.total},
            messages.SUCCESS,
        )
        return sepa_file_response(export)

    @admin.action(description=_("Send approved card refunds to Stripe"), permissions=["change"])
    def send_card_refunds(self, request, queryset):
        """R11s: approved card refunds go back to the card through the Stripe Refund API,
        from the outbox; bank refunds are left for the SEPA file."""
        try:
            outcome = card_payments.queue_card_refunds(
                refund_ids=list(queryset.values_list("pk", flat=True))
            )
        except Refused as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return
        for refund, refusal in outcome.refused:
            self.message_user(
                request,
                _(
                    "Refund %(id)s not sent: %(detail)s "
                    "(captured %(captured)s, already refunded %(refunded)s)."
                )
                % {
                    "id": refund.pk,
                    "detail": refusal.detail,
                    "captured": refusal.facts.get("captured", "-"),
                    "refunded": refusal.facts.get("refunded", "-"),
                },
                messages.ERROR,
            )
        if outcome.queued:
            self.message_user(
                request,
                ngettext(
                    "%(n)d card refund handed over to Stripe; its state follows in the list.",
                    "%(n)d card refunds handed over to Stripe; their states follow in the list.",
                    len(outcome.queued),
                )
                % {"n": len(outcome.queued)},
                messages.SUCCESS,
            )
        elif not outcome.refused:
            self.message_user(
                request,
                _("None of the selected refunds is an approved card refund: nothing sent."),
                messages.WARNING,
            )

    @admin.action(description=_("Mark settled"), permissions=["change"])
    def mark_settled(self, request, queryset):
        settled = refund_services.settle_refunds(
            refund_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(
            request,
            ngettext("%(n)d refund marked settled.", "%(n)d refunds marked settled.", settled)
            % {"n": settled},
            messages.SUCCESS if settled else messages.WARNING,
        )

    @admin.action(description=_("Mark failed…"), permissions=["change"])
    def mark_failed(self, request, queryset):
        """Asks for the reason first (an intermediate page), then calls fail_refunds."""
        refunds = list(queryset.filter(status__in=FAILABLE_STATUSES).order_by("pk"))
        skipped = queryset.count() - len(refunds)
        if not refunds:
            self.message_user(
                request,
                _("Only approved, sent or settled refunds can be marked failed."),
                messages.WARNING,
            )
            return None
        form = FailRefundsForm(request.POST if request.POST.get("apply") else None)
        if form.is_bound and form.is_valid():
            failed = refund_services.fail_refunds(
                refund_ids=[refund.pk for refund in refunds],
                reason=form.cleaned_data["reason"],
            )
            self.message_user(
                request,
                ngettext(
                    "%(n)d refund marked failed; its amount is free again.",
                    "%(n)d refunds marked failed; their amounts are free again.",
                    failed,
                )
                % {"n": failed},
                messages.SUCCESS,
            )
            return None
        return action_page(
            self,
            request,
            "admin/orders/refund/fail_refunds.html",
            title=_("Mark refunds failed"),
            selected=refunds,
            skipped=skipped,
            form=form,
            action="mark_failed",
        )


# --- SEPA files -------------------------------------------------------------------------


class SepaExportRefundInline(ReadOnlyInline):
    model = Refund
    fk_name = "sepa_export"
    fields = ["order", "amount", "reason", "status", "account"]
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")

    @admin.display(description=_("account"))
    def account(self, obj: Refund) -> str:
        return mask_iban(obj.iban)


@admin.register(SepaExport)
class SepaExportAdmin(admin.ModelAdmin):
    """Read-only: a file, once made, is what went to the bank."""

    list_display = ["file_name", "created_at", "created_by", "count", "total", "download"]
    list_select_related = ["created_by"]
    ordering = ["-created_at"]
    search_fields = ["file_name", "message_id"]
    fields = ["file_name", "message_id", "created_at", "created_by", "count", "total", "download"]
    readonly_fields = fields
    inlines = [SepaExportRefundInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("file"))
    def download(self, obj: SepaExport) -> str:
        url = reverse("admin:orders_sepaexport_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))

    def get_urls(self):
        return [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="orders_sepaexport_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, object_id):
        export = self.get_object(request, unquote(object_id))
        if export is None:
            raise Http404(_("No such SEPA file."))
        if not self.has_view_permission(request, export):
            raise PermissionDenied
        return sepa_file_response(export)
