from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from legal.models import Consent, Disclosure, PrivacyPolicyVersion, TermsVersion


@admin.register(TermsVersion, PrivacyPolicyVersion)
class DocumentVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "effective_from", "created_at"]
    search_fields = ["version"]
    date_hierarchy = "effective_from"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are evidence: staff read them, only the services write them."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    """R31: consents per purpose with the policy version, time and source."""

    list_display = [
        "email",
        "purpose",
        "given_at",
        "withdrawn_at",
        "source",
        "policy_version",
        "order",
    ]
    list_filter = [
        "purpose",
        "source",
        ("withdrawn_at", admin.EmptyFieldListFilter),
        "policy_version",
        "given_at",
    ]
    search_fields = ["email"]
    date_hierarchy = "given_at"
    list_select_related = ["policy_version", "order"]


@admin.register(Disclosure)
class DisclosureAdmin(ReadOnlyAdmin):
    """R27: every disclosure of personal data to a third party; a log, read-only."""

    list_display = ["recipient", "categories_text", "purpose", "disclosed_at", "order"]
    list_filter = ["recipient", "disclosed_at"]
    search_fields = ["order__number", "reference", "purpose"]
    date_hierarchy = "disclosed_at"
    list_select_related = ["order"]

    @admin.display(description=_("data categories"))
    def categories_text(self, disclosure: Disclosure) -> str:
        categories = disclosure.categories
        if isinstance(categories, list):
            return ", ".join(str(c) for c in categories)
        return str(categories or "")
