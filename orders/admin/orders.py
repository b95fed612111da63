"""Orders in the admin: read, search and act through services, never edit by hand.

Everything here is read-only: an order changes only through `orders.services` (the
actions below call them). Lists annotate what they show, so a page costs the same number
of queries whatever the number of rows.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from simple_history.admin import SimpleHistoryAdmin

from legal.admin import OrderDisclosureInline, PersonalDataInline
from orders.models import (
    PRE_DISPATCH,
    CancelReason,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    LineStatus,
    Order,
    OrderLine,
    Payment,
    Refund,
)
from orders.services import invoicing_pdf, lifecycle, substitution
from shop.errors import Refused
from shop.money import ZERO, to_money

MONEY_OUTPUT = DecimalField(max_digits=12, decimal_places=2)
# R14c: a shipped order's parcel is with the courier; nobody cancels it (it waits).
CANCELLABLE_BY_STAFF = PRE_DISPATCH


# --- Shared helpers (also used by the other order admins and returns/admin) -------------


def mask_iban(iban: str) -> str:
    """Only the last 4 characters of an account number are shown in lists."""
    iban = (iban or "").replace(" ", "")
    if not iban:
        return "-"
    return f"•••• {iban[-4:]}"


def order_link(order_id: int, number: str) -> str:
    url = reverse("admin:orders_order_change", args=[order_id])
    return format_html('<a href="{}">{}</a>', url, number)


def invoice_pdf_url(order_id: int, invoice_id: int | None = None) -> str:
    url = reverse("admin:orders_order_invoice_pdf", args=[order_id])
    return f"{url}?invoice={invoice_id}" if invoice_id else url


def action_page(
    model_admin: admin.ModelAdmin, request, template: str, **context
) -> TemplateResponse:
    """The intermediate page of an admin action (a confirmation or a form), with what the
    admin templates need: the site's context, the model's options and the name of the
    selection checkbox, so that the page can post the selection back with the action."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            **context,
        },
    )


class ReadOnlyHistoryAdmin(SimpleHistoryAdmin):
    """History of every change (django-simple-history), for reading only.

    Reverting to an old version would write a whole row past the services and the
    protected state machines, so the revert form only shows, it never saves.
    """

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReadOnlyModelAdmin(ReadOnlyHistoryAdmin):
    """Nothing is added, changed or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        raise PermissionDenied


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Order ------------------------------------------------------------------------------


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["sku", "name_lv", "quantity", "unit_price", "vat_rate", "line_total", "status"]
    readonly_fields = fields


class InvoiceInline(ReadOnlyInline):
    model = Invoice
    fields = ["number", "kind", "issue_date", "due_date", "total", "pdf"]
    readonly_fields = fields

    @admin.display(description=_("PDF"))
    def pdf(self, obj: Invoice) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">{}</a>', invoice_pdf_url(obj.order_id, obj.pk), _("PDF"))


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = [
        "received_at",
        "amount",
        "method",
        "payer_name",
        "payer_account",
        "stripe_payment_intent",
    ]
    readonly_fields = fields

    @admin.display(description=_("payer account"))
    def payer_account(self, obj: Payment) -> str:
        return mask_iban(obj.payer_iban)


class RefundInline(ReadOnlyInline):
    model = Refund
    fk_name = "order"
    fields = [
        "amount",
        "reason",
        "status",
        "due_date",
        "destination",
        "account",
        "sent_at",
        "external_id",
    ]
    readonly_fields = fields
    show_change_link = True

    @admin.display(description=_("account"))
    def account(self, obj: Refund) -> str:
        return mask_iban(obj.iban)


class ReinstatedFilter(admin.SimpleListFilter):
    """R10, R12: orders a late-imported payment booked in time brought back: staff check
    them (the goods were reserved again; the customer may need a word)."""

    title = _("reinstated after a late statement")
    parameter_name = "reinstated"

    def lookups(self, request, model_admin):
        return [("yes", _("Reinstated")), ("no", _("Not reinstated"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(reinstated_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(reinstated_at__isnull=True)
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyModelAdmin):
    list_display = [
        "number",
        "placed_at",
        "customer",
        "status",
        "total",
        "amount_paid",
        "invoice_number",
        "contact_deadline",
    ]
    list_filter = ["status", "cancel_reason", ReinstatedFilter, "delivery_method", "is_consumer"]
    search_fields = ["number", "invoices__number", "email"]
    date_hierarchy = "placed_at"
    ordering = ["-placed_at"]
    inlines = [
        OrderLineInline,
        InvoiceInline,
        PaymentInline,
        RefundInline,
        PersonalDataInline,  # R26: personal data held, why, until when
        OrderDisclosureInline,  # R27: who received it
    ]
    actions = ["record_contact", "cancel_by_staff", "mark_line_unavailable", "revoke_links"]
    fieldsets = [
        (None, {"fields": ["number", "status", "cancel_reason", "placed_at", "terms_version"]}),
        (
            _("Customer"),
            {
                "fields": [
                    "first_name",
                    "last_name",
                    "email",
                    "phone",
                    "language",
                    "capacity",
                    "is_consumer",
                    "company_name",
                    "company_reg_no",
                ]
            },
        ),
        (
            _("Delivery"),
            {
                "fields": [
                    "delivery_method",
                    "parcel_machine_name",
                    "street",
                    "city",
                    "postal_code",
                    "country",
                ]
            },
        ),
        (
            _("Money"),
            {"fields": ["goods_total", "delivery_fee", "total", "currency", "amount_paid"]},
        ),
        (
            _("Deadlines and times"),
            {
                "fields": [
                    "contact_deadline",
                    "contact_established_at",
                    "payment_due_at",
                    "paid_at",
                    "shipped_at",
                    "delivered_at",
                    "cancelled_at",
                    "closed_at",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        paid = (
            Payment.objects.filter(order=OuterRef("pk"))
            .order_by()
            .values("order")
            .annotate(s=Sum("amount"))
            .values("s")
        )
        invoice = (
            Invoice.objects.filter(order=OuterRef("pk"), kind=InvoiceKind.INVOICE)
            .order_by("issued_at", "pk")
            .values("number")[:1]
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                paid_sum=Coalesce(
                    Subquery(paid, output_field=MONEY_OUTPUT),
                    Value(ZERO),
                    output_field=MONEY_OUTPUT,
                ),
                first_invoice_number=Subquery(invoice),
            )
        )

    @admin.display(description=_("customer"), ordering="last_name")
    def customer(self, obj: Order) -> str:
        return obj.customer_name

    @admin.display(description=_("amount paid"), ordering="paid_sum")
    def amount_paid(self, obj: Order):
        return to_money(getattr(obj, "paid_sum", None) or ZERO)

    @admin.display(description=_("invoice"), ordering="first_invoice_number")
    def invoice_number(self, obj: Order) -> str:
        return getattr(obj, "first_invoice_number", None) or "-"

    # Invoice PDF for staff (the customer's link needs the order's secret token).

    def get_urls(self):
        urls = super().get_urls()
        custom = [
            path(
                "<path:object_id>/invoice.pdf/",
                self.admin_site.admin_view(self.invoice_pdf_view),
                name="orders_order_invoice_pdf",
            ),
        ]
        return custom + urls

    def invoice_pdf_view(self, request, object_id):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404(_("No such order."))
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        invoices = Invoice.objects.filter(order=order)
        invoice_id = request.GET.get("invoice")
        if invoice_id:
            if not invoice_id.isdigit():
                raise Http404(_("No such invoice."))
            invoice = invoices.filter(pk=int(invoice_id)).first()
        else:
            invoice = invoices.filter(kind=InvoiceKind.INVOICE).order_by("issued_at", "pk").first()
        if invoice is None:
            raise Http404(_("No such invoice."))
        pdf = invoicing_pdf.render_invoice_pdf(invoice)
        return FileResponse(
            iter([pdf]),
            content_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'},
        )

    # Actions: thin, they call the lifecycle services.

    def has_record_contact_permission(self, request) -> bool:
        return request.user.has_perm("orders.record_contact")

    def has_cancel_order_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def has_revoke_links_permission(self, request) -> bool:
        return request.user.has_perm("orders.change_order")

    @admin.action(
        description=_("Revoke the links emailed so far (the customer asked, or one leaked)"),
        permissions=["revoke_links"],
    )
    def revoke_links(self, request, queryset):
        from orders.links import revoke_order_links

        order_ids = sorted(queryset.values_list("pk", flat=True))
        for order_id in order_ids:
            revoke_order_links(order_id=order_id)
        self.message_user(
            request,
            ngettext(
                "The emailed links of %(n)d order no longer work.",
                "The emailed links of %(n)d orders no longer work.",
                len(order_ids),
            )
            % {"n": len(order_ids)},
            messages.SUCCESS,
        )

    @admin.action(description=_("Record successful contact"), permissions=["record_contact"])
    def record_contact(self, request, queryset):
        done, refused = 0, 0
        for order_id in sorted(queryset.values_list("pk", flat=True)):
            try:
                lifecycle.establish_contact(order_id=order_id)
            except Refused:
                refused += 1
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext(
                    "Contact recorded for %(n)d order.",
                    "Contact recorded for %(n)d orders.",
                    done,
                )
                % {"n": done},
                messages.SUCCESS,
            )
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(n)d order is cancelled: no contact recorded.",
                    "%(n)d orders are cancelled: no contact recorded.",
                    refused,
                )
                % {"n": refused},
                messages.WARNING,
            )

    @admin.action(description=_("Cancel order (staff)"), permissions=["cancel_order"])
    def cancel_by_staff(self, request, queryset):
        """Asks for confirmation first: cancelling releases stock, refunds what was paid
        and emails the customer."""
        orders = list(queryset.filter(status__in=CANCELLABLE_BY_STAFF).order_by("pk"))
        skipped = queryset.count() - len(orders)
        if not orders:
            self.message_user(
                request,
                _(
                    "None of the selected orders can be cancelled (shipped, delivered, closed "
                    "or cancelled)."
                ),
                messages.WARNING,
            )
            return None
        if request.POST.get("confirm") != "yes":
            return action_page(
                self,
                request,
                "admin/orders/order/cancel_orders.html",
                title=_("Cancel orders"),
                orders=orders,
                skipped=skipped,
                action="cancel_by_staff",
            )
        cancelled = 0
        for order in orders:
            try:
                lifecycle.cancel_order(order_id=order.pk, reason=CancelReason.STAFF)
            except (TransitionNotAllowed, ConcurrentTransition, Refused):
                skipped += 1
            else:
                cancelled += 1
        self.message_user(
            request,
            ngettext("%(n)d order cancelled.", "%(n)d orders cancelled.", cancelled)
            % {"n": cancelled},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(n)d order could not be cancelled.",
                    "%(n)d orders could not be cancelled.",
                    skipped,
                )
                % {"n": skipped},
                messages.WARNING,
            )
        return None

    def has_mark_line_unavailable_permission(self, request) -> bool:
        return request.user.has_perm("orders.mark_line_unavailable")

    @admin.action(
        description=_("Mark a line unavailable and offer a substitute…"),
        permissions=["mark_line_unavailable"],
    )
    def mark_line_unavailable(self, request, queryset):
        """R13 (T3.5): pick the line and, optionally, a similar product to offer instead.
        The customer is emailed and decides on the order page; without a substitute the
        line is cancelled and its amount refunded."""
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one order."), messages.WARNING)
            return None
        order = queryset.get()
        lines = list(order.lines.filter(status=LineStatus.ORDERED).order_by("pk"))
        if request.POST.get("confirm") == "yes":
            line = next((x for x in lines if str(x.pk) == request.POST.get("line")), None)
            if line is None:
                self.message_user(request, _("Choose a line of this order."), messages.ERROR)
                return None
            sku = (request.POST.get("substitute_sku") or "").strip() or None
            try:
                substitution.mark_line_unavailable(line_id=line.pk, substitute_sku=sku)
            except Refused as exc:
                self.message_user(request, exc.detail, messages.ERROR)
                return None
            self.message_user(
                request,
                _("Line %(sku)s marked unavailable; the customer has been emailed.")
                % {"sku": line.sku},
                messages.SUCCESS,
            )
            return None
        return action_page(
            self,
            request,
            "admin/orders/order/mark_line_unavailable.html",
            title=_("Goods unavailable"),
            order=order,
            lines=lines,
            action="mark_line_unavailable",
        )


# --- Invoices and payments --------------------------------------------------------------


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["sku", "description", "quantity", "unit_price", "vat_rate", "total"]
    readonly_fields = fields


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyModelAdmin):
    list_display = [
        "number",
        "kind",
        "order_number",
        "issue_date",
        "due_date",
        "buyer_name",
        "total",
        "pdf",
    ]
    list_select_related = ["order"]
    list_filter = ["kind", "series", "year"]
    search_fields = ["number", "buyer_name", "order__number"]
    ordering = ["-issued_at"]
    inlines = [InvoiceLineInline]
    readonly_fields = [
        "number",
        "kind",
        "order",
        "corrects",
        "issued_at",
        "issue_date",
        "due_date",
        "seller",
        "buyer_name",
        "buyer_address",
        "buyer_reg_no",
        "total",
        "vat_breakdown",
        "pdf",
    ]
    fields = readonly_fields

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: Invoice) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("PDF"))
    def pdf(self, obj: Invoice) -> str:
        return format_html('<a href="{}">{}</a>', invoice_pdf_url(obj.order_id, obj.pk), _("PDF"))


@admin.register(Payment)
class PaymentAdmin(ReadOnlyModelAdmin):
    list_display = ["received_at", "order_number", "amount", "method", "payer_name", "account"]
    list_select_related = ["order"]
    list_filter = ["method"]
    search_fields = [
        "order__number",
        "order__invoices__number",
        "order__email",
        "payer_name",
        "stripe_payment_intent",
    ]
    date_hierarchy = "received_at"
    ordering = ["-received_at", "-pk"]
    readonly_fields = [
        "order",
        "amount",
        "method",
        "received_at",
        "payer_name",
        "payer_iban",
        "bank_entry",
        "stripe_payment_intent",
        "created_at",
    ]
    fields = readonly_fields

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: Payment) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("payer account"))
    def account(self, obj: Payment) -> str:
        return mask_iban(obj.payer_iban)
