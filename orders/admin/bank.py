"""Money in, for staff (R11): bank statement upload with progress, and the queue of
credits that could not be matched automatically.

- Bank statements: "Add" opens the upload page; the file is stored and imported by the
  Celery task `orders.tasks.import_bank_statement_task` after commit, while the progress
  page refreshes itself every two seconds (no JavaScript).
- Bank entries: the list opens on the credits waiting for staff. "Match to invoice…"
  asks for the invoice number and records the payment through the same service as an
  automatic match; "Ignore…" sets a credit aside with a note.

Permissions are Django's model permissions: `orders.add_bankstatement` to upload,
`orders.view_bankstatement` / `orders.view_bankentry` to look, `orders.change_bankentry`
to match or ignore credits. Nothing here changes money directly: every action calls
`orders.services.bank`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from orders.admin.orders import action_page, mask_iban, order_link
from orders.camt import CamtError, sniff
from orders.models import BankEntry, BankEntryStatus, BankStatement
from orders.services import bank as bank_services
from shop.errors import InvalidInput, Refused

RUNNING = (BankStatement.Status.PENDING, BankStatement.Status.RUNNING)


# --- Bank statements ----------------------------------------------------------------------


class StatementUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Statement file"),
        help_text=_(
            "An ISO 20022 XML file from the bank: camt.053 account statement or camt.054 "
            "credit notification (versions 001.02 to 001.08). A file imported before is not "
            "imported again."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".xml,application/xml,text/xml"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.BANK_STATEMENT_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is larger than %(mb)d MB; split the statement period.")
                % {"mb": limit // (1024 * 1024)},
                code="too_large",
            )
        try:
            sniff(upload)  # the type: an ISO 20022 camt.053/054 document, read from its root
        except CamtError as exc:
            raise forms.ValidationError(str(exc), code="not_camt") from exc
        return upload


@admin.register(BankStatement)
class BankStatementAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "file_name",
        "message_type",
        "statement_id",
        "status",
        "progress",
        "new_entries",
        "duplicate_entries",
        "matched_entries",
        "unmatched_link",
        "imported_at",
        "imported_by",
    ]
    list_display_links = ["id", "file_name"]
    list_filter = ["status", "message_type"]
    search_fields = ["file_name", "statement_id", "sha256"]
    date_hierarchy = "imported_at"
    list_select_related = ["imported_by"]
    fields = [
        "file_name",
        "progress",
        "status",
        "error",
        "refused_list",
        "message_type",
        "statement_id",
        "account_iban",
        "total_entries",
        "processed_entries",
        "new_entries",
        "duplicate_entries",
        "matched_entries",
        "unmatched_link",
        "sha256",
        "uploaded_file",
        "imported_at",
        "imported_by",
    ]
    readonly_fields = fields

    actions = ["retry_import"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request) -> bool:
        return self.has_add_permission(request)

    @admin.action(description=_("Retry the import"), permissions=["retry"])
    def retry_import(self, request, queryset):
        """A statement stuck while waiting (the broker was down) or interrupted is handed
        to the worker again; the import is idempotent (issue 14)."""
        count = bank_services.retry_import(statement_ids=queryset.values_list("pk", flat=True))
        if count:
            self.message_user(
                request,
                ngettext(
                    "%(count)d statement handed to the importer again.",
                    "%(count)d statements handed to the importer again.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("Only waiting or interrupted statements can be retried."),
                messages.WARNING,
            )

    @admin.display(description=_("refused entries"))
    def refused_list(self, obj: BankStatement) -> str:
        entries = obj.refused_entries or []
        if not entries:
            return "-"
        return format_html_join(
            format_html("<br>"),
            "{} {} {}: {}",
            (
                (_("line"), e.get("line") or "?", e.get("reference") or "", e.get("reason"))
                for e in entries
            ),
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="{}_{}_upload".format(*info),
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="{}_{}_progress".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("progress"))
    def progress(self, obj: BankStatement) -> str:
        url = reverse("admin:orders_bankstatement_progress", args=[obj.pk])
        return format_html(
            '<a href="{}"><progress value="{}" max="{}"></progress> {} / {}</a>',
            url,
            obj.processed_entries,
            obj.total_entries or 1,
            obj.processed_entries,
            obj.total_entries,
        )

    @admin.display(description=_("unmatched"))
    def unmatched_link(self, obj: BankStatement) -> str:
        count = max(obj.new_entries - obj.matched_entries, 0)
        url = reverse("admin:orders_bankentry_changelist")
        return format_html(
            '<a href="{}?statement__id__exact={}&amp;queue=unmatched">{}</a>', url, obj.pk, count
        )

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:orders_bankstatement_upload"))

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StatementUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                statement, created = bank_services.submit_statement(
                    upload=upload, file_name=upload.name, user=request.user
                )
            except CamtError as exc:
                form.add_error("file", str(exc))
            else:
                if not created and statement.status == BankStatement.Status.PENDING:
                    self.message_user(
                        request,
                        _(
                            "This file is stored already (statement %(id)s) and waits for "
                            "the importer; it was handed to the importer again."
                        )
                        % {"id": statement.pk},
                        messages.INFO,
                    )
                elif not created:
                    self.message_user(
                        request,
                        _("This file was imported before (statement %(id)s): nothing changed.")
                        % {"id": statement.pk},
                        messages.WARNING,
                    )
                return HttpResponseRedirect(
                    reverse("admin:orders_bankstatement_progress", args=[statement.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Upload a bank statement"),
            "form": form,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/orders/bankstatement/upload.html", context)

    def progress_view(self, request, object_id):
        statement = self.get_object(request, unquote(object_id))
        if statement is None:
            raise Http404
        if not self.has_view_permission(request, statement):
            raise PermissionDenied
        running = statement.status in RUNNING
        entries_url = reverse("admin:orders_bankentry_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import of %(name)s") % {"name": statement.file_name},
            "statement": statement,
            "running": running,
            "unmatched": max(statement.new_entries - statement.matched_entries, 0),
            "unmatched_url": f"{entries_url}?statement__id__exact={statement.pk}&queue=unmatched",
            "entries_url": f"{entries_url}?statement__id__exact={statement.pk}&queue=all",
            "has_add_permission": self.has_add_permission(request),
        }
        return TemplateResponse(request, "admin/orders/bankstatement/progress.html", context)


# --- Bank entries: the staff queue ----------------------------------------------------------


class QueueFilter(admin.SimpleListFilter):
    """The list opens on what waits for staff; "All" shows every credit."""

    title = _("status")
    parameter_name = "queue"
    default = BankEntryStatus.UNMATCHED

    def lookups(self, request, model_admin):
        order = [BankEntryStatus.UNMATCHED, BankEntryStatus.MATCHED, BankEntryStatus.IGNORED]
        return [(status.value, status.label) for status in order] + [("all", _("All"))]

    def value(self):
        return super().value() or self.default

    def queryset(self, request, queryset):
        value = self.value()
        if value == "all":
            return queryset
        if value in BankEntryStatus.values:
            return queryset.filter(status=value)
        return queryset

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class MatchEntriesForm(forms.Form):
    """One invoice number per selected credit; a blank one leaves that credit waiting."""

    def __init__(self, *args, entries, **kwargs):
        super().__init__(*args, **kwargs)
        self.entries = list(entries)
        for entry in self.entries:
            self.fields[f"invoice_{entry.pk}"] = forms.CharField(
                label=_("Invoice number"),
                max_length=40,
                required=len(self.entries) == 1,
                widget=forms.TextInput(attrs={"placeholder": "KEU-2026-000123", "size": 20}),
            )

    def rows(self):
        return [(entry, self[f"invoice_{entry.pk}"]) for entry in self.entries]

    def numbers(self) -> dict[int, str]:
        return {
            entry.pk: self.cleaned_data[f"invoice_{entry.pk}"].strip()
            for entry in self.entries
            if self.cleaned_data.get(f"invoice_{entry.pk}", "").strip()
        }


class IgnoreEntriesForm(forms.Form):
    note = forms.CharField(
        label=_("Why is it ignored?"),
        max_length=250,
        help_text=_("For example: interest, a transfer between our own accounts, a test payment."),
        widget=forms.TextInput(attrs={"size": 60}),
    )


@admin.register(BankEntry)
class BankEntryAdmin(admin.ModelAdmin):
    list_display = [
        "booking_date",
        "amount",
        "currency",
        "payer",
        "payer_account",
        "remittance",
        "creditor_reference",
        "status",
        "order_number",
        "note",
    ]
    list_display_links = ["booking_date", "amount"]
    list_filter = [QueueFilter, "currency", "booking_date", "statement"]
    list_select_related = ["order"]
    search_fields = [
        "remittance_info",
        "debtor_name",
        "creditor_reference",
        "bank_reference",
        "order__number",
    ]
    search_help_text = _("Remittance text, payer, reference, order number or an exact amount.")
    date_hierarchy = "booking_date"
    actions = ["match_to_invoice", "ignore"]
    fields = [
        "statement",
        "booking_date",
        "value_date",
        "amount",
        "currency",
        "debtor_name",
        "debtor_iban",
        "debtor_bic",
        "remittance_info",
        "creditor_reference",
        "bank_reference",
        "entry_key",
        "status",
        "order_number",
        "note",
    ]
    readonly_fields = [f for f in fields if f != "note"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        """An amount typed as "12.50" or "12,50" finds that amount exactly."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().replace(",", ".").removeprefix("€").strip()
        try:
            amount = Decimal(term)
        except (InvalidOperation, ValueError):
            return results, may_have_duplicates
        if amount.is_finite() and amount > 0:
            results = results | queryset.filter(amount=amount)
        return results, may_have_duplicates

    @admin.display(description=_("payer"), ordering="debtor_name")
    def payer(self, obj: BankEntry) -> str:
        return obj.debtor_name or "-"

    @admin.display(description=_("payer account"))
    def payer_account(self, obj: BankEntry) -> str:
        return mask_iban(obj.debtor_iban)

    @admin.display(description=_("remittance information"))
    def remittance(self, obj: BankEntry) -> str:
        return Truncator(obj.remittance_info).chars(60) or "-"

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: BankEntry) -> str:
        if obj.order_id is None:
            return "-"
        return order_link(obj.order_id, obj.order.number)

    # Actions -----------------------------------------------------------------------------

    @admin.action(description=_("Match to invoice…"), permissions=["change"])
    def match_to_invoice(self, request, queryset):
        entries = list(queryset.filter(status__in=[BankEntryStatus.UNMATCHED]).order_by("pk"))
        skipped = queryset.count() - len(entries)
        if not entries:
            self.message_user(
                request, _("Only credits waiting for staff can be matched."), messages.WARNING
            )
            return None
        form = MatchEntriesForm(request.POST if "apply" in request.POST else None, entries=entries)
        if "apply" in request.POST and form.is_valid():
            errors: dict[int, str] = {}
            for entry_id, number in form.numbers().items():
                try:
                    entry = bank_services.match_entry_to_invoice(
                        entry_id=entry_id, invoice_number=number, by=request.user
                    )
                except Refused as exc:
                    errors[entry_id] = exc.detail
                    continue
                except InvalidInput as exc:
                    errors[entry_id] = exc.errors[0]["message"]
                    continue
                self.message_user(
                    request,
                    _("Credit of %(amount)s %(currency)s recorded as a payment of order %(order)s.")
                    % {
                        "amount": entry.amount,
                        "currency": entry.currency,
                        "order": entry.order.number,
                    },
                    messages.SUCCESS,
                )
            if not errors:
                if not form.numbers():
                    self.message_user(request, _("No invoice number given."), messages.WARNING)
                return None
            # Show the form again for the credits that could not be matched.
            entries = [entry for entry in entries if entry.pk in errors]
            form = MatchEntriesForm(request.POST, entries=entries)
            form.is_valid()
            for entry_id, message in errors.items():
                form.add_error(f"invoice_{entry_id}", message)
        return action_page(
            self,
            request,
            "admin/orders/bankentry/match_to_invoice.html",
            title=_("Match credits to invoices"),
            form=form,
            entries=entries,
            skipped=skipped,
            action="match_to_invoice",
        )

    @admin.action(description=_("Ignore…"), permissions=["change"])
    def ignore(self, request, queryset):
        entries = list(queryset.filter(status=BankEntryStatus.UNMATCHED).order_by("pk"))
        skipped = queryset.count() - len(entries)
        if not entries:
            self.message_user(
                request, _("Only credits waiting for staff can be ignored."), messages.WARNING
            )
            return None
        form = IgnoreEntriesForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            count = bank_services.ignore_entries(
                entry_ids=[e.pk for e in entries], note=form.cleaned_data["note"], by=request.user
            )
            self.message_user(
                request,
                ngettext("%(n)d credit ignored.", "%(n)d credits ignored.", count) % {"n": count},
                messages.SUCCESS,
            )
            return None
        return action_page(
            self,
            request,
            "admin/orders/bankentry/ignore_entries.html",
            title=_("Ignore credits"),
            form=form,
            selected=entries,
            skipped=skipped,
            action="ignore",
        )
