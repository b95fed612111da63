from django.contrib import admin

from legal.models import PrivacyPolicyVersion, TermsVersion


@admin.register(TermsVersion, PrivacyPolicyVersion)
class DocumentVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "effective_from", "created_at"]
    search_fields = ["version"]
    date_hierarchy = "effective_from"
