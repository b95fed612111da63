from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from delivery import selectors, services
from delivery.models import DeliveryTariff, ParcelMachine
from shop.errors import InvalidInput

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
