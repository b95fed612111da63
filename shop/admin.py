from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from shop import outbox
from shop.admin_login import LockoutAdminAuthenticationForm
from shop.models import ExtraHoliday, OutboxMessage, Product, VatRate

admin.site.site_header = _("Keune.lv back office")
admin.site.site_title = _("Keune.lv back office")
admin.site.index_title = _("Shop administration")
# The login locks out after repeated wrong passwords (shop.admin_login).
admin.site.login_form = LockoutAdminAuthenticationForm


@admin.register(Product)
class ProductAdmin(SimpleHistoryAdmin):
    list_display = ["sku", "name_lv", "price", "vat_category", "stock", "sealed_hygiene", "active"]
    list_filter = ["active", "sealed_hygiene", "vat_category"]
    search_fields = ["sku", "name_lv", "name_en"]
    list_editable = ["active"]


@admin.register(VatRate)
class VatRateAdmin(admin.ModelAdmin):
    list_display = ["category", "rate", "effective_from"]
    list_filter = ["category"]


@admin.register(ExtraHoliday)
class ExtraHolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "name"]
    date_hierarchy = "date"


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "topic", "created_at", "delivered_at", "attempts", "last_error"]
    list_filter = ["topic", ("delivered_at", admin.EmptyFieldListFilter)]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    exclude = ["payload"]  # rendered emails hold personal data
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_deliver_permission(self, request) -> bool:
        """Delivering now is a change to the message: its model permission."""
        return request.user.has_perm("shop.change_outboxmessage")

    @admin.action(
        description=_("Deliver the selected undelivered messages now"), permissions=["deliver"]
    )
    def retry_now(self, request, queryset):
        delivered = sum(
            outbox.deliver(pk)
            for pk in queryset.filter(delivered_at__isnull=True).values_list("pk", flat=True)
        )
        self.message_user(
            request, _("%(n)d message(s) delivered.") % {"n": delivered}, messages.SUCCESS
        )
