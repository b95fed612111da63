from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from delivery import selectors, services
from delivery.couriers import get_courier
from delivery.models import (
    CourierEvent,
    DeliveryTariff,
    ParcelMachine,
    Shipment,
    ShipmentStatus,
)
from orders.models import Order
from shop.errors import InvalidInput, Refused
from shop.models import OutboxMessage

TARIFF_FIELDS = ["fee", "free_above", "effective_from"]


class DeliveryTariffForm(forms.ModelForm):
    class Meta:
        model = DeliveryTariff
        fields = TARIFF_FIELDS

    def clean_effective_from(self):
        effective_from = self.cleaned_data["effective_from"]
        if "effective_from" in self.changed_data or self.instance.pk is None:
            try:
                services.check_new_tariff_date(effective_from)
            except InvalidInput as exc:
                raise ValidationError(exc.errors[0]["message"], code=exc.errors[0]["code"]) from exc
        return effective_from


@admin.register(DeliveryTariff)
class DeliveryTariffAdmin(admin.ModelAdmin):
    """R6: to change the fee or the free-delivery threshold, add a tariff that takes effect
    now or later. Orders keep the tariff they were placed under, so a tariff in use is
    read-only and cannot be deleted."""

    form = DeliveryTariffForm
    list_display = ["__str__", "fee", "free_above", "effective_from", "in_force", "in_use"]
    date_hierarchy = "effective_from"

    def get_queryset(self, request):
        return selectors.tariffs_with_status()

    @admin.display(boolean=True, description=_("in force"))
    def in_force(self, tariff: DeliveryTariff) -> bool:
        return bool(getattr(tariff, "in_force", False))

    @admin.display(boolean=True, description=_("used by orders"))
    def in_use(self, tariff: DeliveryTariff) -> bool:
        return selectors.tariff_in_use(tariff)

    def get_fields(self, request, obj=None):
        return [*TARIFF_FIELDS, "created_at"] if obj else TARIFF_FIELDS

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and selectors.tariff_in_use(obj):
            return [*TARIFF_FIELDS, "created_at"]
        return ["created_at"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and selectors.tariff_in_use(obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.create_delivery_tariff(
            fee=obj.fee, free_above=obj.free_above, effective_from=obj.effective_from
        )
        obj.pk, obj.created_at = created.pk, created.created_at


@admin.register(ParcelMachine)
class ParcelMachineAdmin(admin.ModelAdmin):
    """R4: the directory is loaded from Omniva's file (`load_parcel_machines`). Machines are
    never deleted: orders refer to them; a machine gone from the file is deactivated."""

    list_display = ["zip", "name", "city", "address", "county", "active", "updated_at"]
    list_filter = ["active", "city", "county"]
    search_fields = ["zip", "name", "city", "address"]
    readonly_fields = ["latitude", "longitude", "updated_at"]
    actions = ["activate", "deactivate"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return ["zip", *fields] if obj else fields

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Activate the selected parcel machines"), permissions=["change"])
    def activate(self, request, queryset):
        self._set_active(request, queryset, active=True)

    @admin.action(description=_("Deactivate the selected parcel machines"), permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, active=False)

    def _set_active(self, request, queryset, *, active: bool) -> None:
        changed = services.set_parcel_machines_active(
            zips=list(queryset.values_list("zip", flat=True)), active=active
        )
        self.message_user(
            request, _("%(n)d parcel machine(s) changed.") % {"n": changed}, messages.SUCCESS
        )


# --- Shipments and courier events (R14) --------------------------------------------------


def _service_error(exc: Exception) -> str:
    if isinstance(exc, InvalidInput):
        return "; ".join(e["message"] for e in exc.errors)
    return str(getattr(exc, "detail", exc))


def _order_link(order_id: int, number: str) -> str:
    url = reverse("admin:orders_order_change", args=[order_id])
    return format_html('<a href="{}">{}</a>', url, number)


class ShipmentRegisterForm(forms.ModelForm):
    """Add: a shipment of a paid order. Change (a shipment still waiting): register it.

    An empty barcode registers the parcel with Omniva in the background (when the Omniva
    client is on); a barcode records a parcel registered by hand in Omniva's e-service.
    The service runs when the form is checked, so a refusal shows on the form.
    """

    order_number = forms.CharField(label=_("order number"), max_length=16)
    barcode_by_hand = forms.CharField(
        label=_("barcode"),
        max_length=64,
        required=False,
        help_text=_(
            "Leave empty to register the parcel with Omniva; enter the barcode of a parcel "
            "you registered in Omniva's e-service yourself."
        ),
    )

    class Meta:
        model = Shipment
        fields: list[str] = []

    user = None  # set by ShipmentAdmin.get_form
    shipment: Shipment | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields.pop("order_number", None)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        barcode = (cleaned.get("barcode_by_hand") or "").strip() or None
        try:
            if self.instance.pk is None:
                order = Order.objects.filter(number=cleaned["order_number"].strip().upper()).first()
                if order is None:
                    raise ValidationError({"order_number": _("No order with this number.")})
                self.shipment = services.register_shipment(
                    order_id=order.pk, barcode=barcode, by=self.user
                )
            else:
                self.shipment = services.register_pending_shipment(
                    shipment_id=self.instance.pk, barcode=barcode
                )
        except (Refused, InvalidInput) as exc:
            raise ValidationError(_service_error(exc)) from exc
        return cleaned


class CourierEventInline(admin.TabularInline):
    model = CourierEvent
    fk_name = "shipment"
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["occurred_at", "event", "location", "reason", "result", "channel", "received_at"]
    readonly_fields = fields
    ordering = ["occurred_at", "pk"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    """R14: add a shipment to a paid order (Omniva registers it, or you record the barcode),
    download its label, follow its courier events. Status changes only by courier events."""

    form = ShipmentRegisterForm
    list_display = [
        "__str__",
        "order_number",
        "direction",
        "status",
        "registration",
        "replacement",
        "created_at",
        "delivered_at",
        "label",
        "waiting_for",
    ]
    list_filter = ["status", "direction", "registration", "replacement"]
    search_fields = ["barcode", "return_code", "order__number"]
    date_hierarchy = "created_at"
    list_select_related = ["order"]
    actions = ["register_with_omniva", "fetch_labels", "record_return_arrival"]
    inlines = [CourierEventInline]
    shown_fields = [
        "order_number",
        "direction",
        "status",
        "barcode",
        "label",
        "tracking",
        "return_code",
        "return_of",
        "registration",
        "replacement",
        "note",
        "lines",
        "created_at",
        "created_by",
        "registered_at",
        "delivered_at",
        "failed_at",
        "failure_reason",
        "last_event_at",
        "last_polled_at",
        "waiting_for",
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer("label_pdf")
            .annotate(
                has_label=ExpressionWrapper(Q(label_pdf__isnull=False), output_field=BooleanField())
            )
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["order_number", "barcode_by_hand"]
        if obj.status == ShipmentStatus.PENDING:
            return ["barcode_by_hand", *self.shown_fields]
        return self.shown_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.shown_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status != ShipmentStatus.PENDING:
            return False  # everything else changes only through courier events
        return request.user.has_perm("delivery.add_shipment")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        shipment = form.shipment  # registered by the form's service call
        obj.pk, obj.barcode, obj.order_id = shipment.pk, shipment.barcode, shipment.order_id
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        pass  # nothing is written by hand

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: Shipment) -> str:
        return _order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("label"))
    def label(self, obj: Shipment) -> str:
        if not getattr(obj, "has_label", False):
            return "-"
        url = reverse("admin:delivery_shipment_label", args=[obj.pk])
        return format_html('<a href="{}">PDF</a>', url)

    @admin.display(description=_("tracking"))
    def tracking(self, obj: Shipment) -> str:
        if not obj.barcode:
            return "-"
        url = get_courier().tracking_url(obj.barcode)
        return format_html('<a href="{}" rel="noopener" target="_blank">{}</a>', url, url)

    @admin.display(description=_("registration with Omniva"))
    def waiting_for(self, obj: Shipment) -> str:
        if obj.status != ShipmentStatus.PENDING:
            return "-"
        if obj.registration_error:
            return _("refused: %(error)s") % {"error": obj.registration_error}
        message = (
            OutboxMessage.objects.filter(
                topic=services.REGISTER_TOPIC,
                dedupe_key__startswith=f"shipment-register-{obj.pk}-",
                delivered_at__isnull=True,
            )
            .order_by("-pk")
            .first()
        )
        if message is None:
            return _("waiting for staff")
        if message.attempts:
            return _("retrying (attempt %(n)d failed: %(error)s)") % {
                "n": message.attempts,
                "error": message.last_error,
            }
        return _("queued")

    def get_urls(self):
        urls = super().get_urls()
        extra = [
            path(
                "<path:object_id>/label.pdf",
                self.admin_site.admin_view(self.label_view),
                name="delivery_shipment_label",
            )
        ]
        return extra + urls

    def label_view(self, request, object_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        shipment = Shipment.objects.filter(pk=unquote(object_id)).first()
        if shipment is None or not shipment.label_pdf:
            raise Http404(_("No label for this shipment."))
        response = HttpResponse(bytes(shipment.label_pdf), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="omniva-{shipment.barcode}.pdf"'
        return response

    def has_add_shipment_permission(self, request) -> bool:
        return request.user.has_perm("delivery.add_shipment")

    def _each(self, request, queryset, action, done_message) -> None:
        done = 0
        for shipment_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                action(shipment_id)
                done += 1
            except (Refused, InvalidInput) as exc:
                self.message_user(
                    request, f"#{shipment_id}: {_service_error(exc)}", messages.WARNING
                )
        if done:
            self.message_user(request, done_message % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Register with Omniva"), permissions=["add_shipment"])
    def register_with_omniva(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda pk: services.retry_registration(shipment_id=pk),
            _("%(n)d shipment(s) queued for registration with Omniva."),
        )

    @admin.action(description=_("Fetch the label from Omniva again"), permissions=["add_shipment"])
    def fetch_labels(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda pk: services.fetch_label(shipment_id=pk),
            _("%(n)d label(s) fetched."),
        )

    @admin.action(
        description=_("Record the returned goods as arrived"), permissions=["add_shipment"]
    )
    def record_return_arrival(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda pk: services.record_return_arrival(shipment_id=pk),
            _("%(n)d return parcel(s) recorded as arrived."),
        )


@admin.register(CourierEvent)
class CourierEventAdmin(admin.ModelAdmin):
    """Raw courier events (R14b), stored once each. Filter by result "Unknown barcode" for
    the queue of events no shipment of ours matched: record the missing barcode, then
    "Apply again"; or dismiss what is not ours. Filter "waiting for staff" for the queue of
    applied events staff must look at (R14c: a failed delivery whose reason names no fault
    of the customer's leaves the order shipped); "Mark as handled" takes them out."""

    list_display = [
        "received_at",
        "barcode",
        "event",
        "occurred_at",
        "result",
        "channel",
        "shipment_link",
        "needs_review",
        "review_reason",
        "note",
    ]
    list_filter = ["needs_review", "result", "event", "channel"]
    search_fields = ["barcode", "event_id"]
    date_hierarchy = "received_at"
    list_select_related = ["shipment"]
    actions = ["apply_again", "dismiss", "mark_reviewed"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_handle_permission(self, request) -> bool:
        return request.user.has_perm("delivery.add_shipment")

    @admin.display(description=_("shipment"))
    def shipment_link(self, obj: CourierEvent) -> str:
        if obj.shipment_id is None:
            return "-"
        url = reverse("admin:delivery_shipment_change", args=[obj.shipment_id])
        return format_html('<a href="{}">{}</a>', url, obj.shipment)

    @admin.action(description=_("Apply again (unknown barcodes only)"), permissions=["handle"])
    def apply_again(self, request, queryset):
        report = services.rematch_events(event_ids=list(queryset.values_list("pk", flat=True)))
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(report.items())) or _("nothing to do")
        self.message_user(request, summary, messages.INFO)

    @admin.action(description=_("Dismiss (not one of our parcels)"), permissions=["handle"])
    def dismiss(self, request, queryset):
        count = services.dismiss_events(
            event_ids=list(queryset.values_list("pk", flat=True)),
            note=f"dismissed by {request.user.get_username()}",
        )
        self.message_user(request, _("%(n)d event(s) dismissed.") % {"n": count}, messages.SUCCESS)

    @admin.action(description=_("Mark as handled (waiting for staff)"), permissions=["handle"])
    def mark_reviewed(self, request, queryset):
        count = services.mark_events_reviewed(
            event_ids=list(queryset.values_list("pk", flat=True)),
            note=f"handled by {request.user.get_username()}",
        )
        self.message_user(request, _("%(n)d event(s) handled.") % {"n": count}, messages.SUCCESS)
