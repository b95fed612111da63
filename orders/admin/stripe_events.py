"""Stripe events in the admin (R11s): read-only. Failed card payments are found here
(filter by type `payment_intent.payment_failed`), with the decline reason."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from orders.admin.orders import order_link
from orders.models import StripeEvent


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "type",
        "result",
        "order_number",
        "payment_intent",
        "note",
        "event_id",
    ]
    list_filter = ["type", "result"]
    list_select_related = ["order"]
    search_fields = ["event_id", "payment_intent", "order__number"]
    date_hierarchy = "received_at"
    ordering = ["-received_at", "-pk"]
    fields = [
        "event_id",
        "type",
        "result",
        "order_number",
        "payment_intent",
        "note",
        "received_at",
        "processed_at",
        "payload_json",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: StripeEvent) -> str:
        if obj.order_id is None:
            return "-"
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("payload"))
    def payload_json(self, obj: StripeEvent) -> str:
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>",
            json.dumps(obj.payload, indent=2, sort_keys=True),
        )
