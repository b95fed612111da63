"""Terms, consents, disclosures, the personal-data ledger, erasures, legal holds and
data-subject requests in the admin. Evidence is read-only; what changes goes through
the services (legal.services)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from legal import registry
from legal.access import Subject
from legal.models import (
    Consent,
    DataSubjectRequest,
    Disclosure,
    ErasureRecord,
    LegalHold,
    PersonalDataRecord,
    PrivacyPolicyVersion,
    RequestChannel,
    RequestKind,
    RequestStatus,
    TermsVersion,
)
from legal.policy import CATEGORIES
from legal.selectors import basis_text
from legal.services import disclosures as disclosure_services
from legal.services import holds as hold_services
from legal.services import requests as request_services
from shop.errors import InvalidInput, Refused


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
        "confirmed_at",
        "withdrawn_at",
        "source",
        "policy_version",
        "order",
        "keep_until",
        "erased_at",
    ]
    list_filter = [
        "purpose",
        "source",
        ("confirmed_at", admin.EmptyFieldListFilter),
        ("withdrawn_at", admin.EmptyFieldListFilter),
        ("erased_at", admin.EmptyFieldListFilter),
        "policy_version",
        "given_at",
    ]
    search_fields = ["email"]
    date_hierarchy = "given_at"
    list_select_related = ["policy_version", "order"]


class DisclosureForm(forms.ModelForm):
    """Staff record a disclosure they made (an authority's request, a court order)."""

    categories = forms.MultipleChoiceField(
        label=_("data categories"),
        choices=[(c.code, f"{c.annex} {c.title}") for c in CATEGORIES.values()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Disclosure
        fields = [
            "recipient",
            "categories",
            "purpose",
            "order",
            "reference",
            "disclosed_at",
            "withheld_from_subject",
        ]


@admin.register(Disclosure)
class DisclosureAdmin(ReadOnlyAdmin):
    """R27: every disclosure of personal data to a third party; a log: staff add the
    disclosures they make (to an authority), nobody changes one."""

    list_display = ["recipient", "categories_text", "purpose", "disclosed_at", "order"]
    list_filter = ["recipient", "withheld_from_subject", "disclosed_at"]
    search_fields = ["order__number", "reference", "purpose"]
    date_hierarchy = "disclosed_at"
    list_select_related = ["order"]
    raw_id_fields = ["order"]

    def has_add_permission(self, request):
        return request.user.has_perm("legal.add_disclosure")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = DisclosureForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return
        disclosure = disclosure_services.record_disclosure(
            recipient=obj.recipient,
            categories=form.cleaned_data["categories"],
            purpose=obj.purpose,
            order_id=obj.order_id,
            reference=obj.reference,
            at=obj.disclosed_at,
            withheld_from_subject=obj.withheld_from_subject,
        )
        obj.pk = disclosure.pk

    @admin.display(description=_("data categories"))
    def categories_text(self, disclosure: Disclosure) -> str:
        categories = disclosure.categories
        if isinstance(categories, list):
            return ", ".join(str(c) for c in categories)
        return str(categories or "")


# --- The ledger (R26) ----------------------------------------------------------------------------


def _category_title(row: PersonalDataRecord) -> str:
    category = CATEGORIES.get(row.category)
    return f"{category.annex} {category.title}" if category else row.category


def _kept_until(row: PersonalDataRecord) -> str:
    if row.erased_at is not None:
        return str(_("erased"))
    if row.keep_until is not None:
        return row.keep_until.isoformat()
    if row.hold_note:
        return str(_("legal hold: %(note)s") % {"note": row.hold_note})
    return str(_("while the order is performed"))


class PersonalDataInline(admin.TabularInline):
    """R26 on the order: which personal data it holds, why, on which basis, until when."""

    model = PersonalDataRecord
    verbose_name = _("personal data held")
    verbose_name_plural = _("personal data held (R26)")
    extra = 0
    max_num = 0
    can_delete = False
    fields = [
        "category_title",
        "fields_held",
        "why",
        "basis_text",
        "kept_until",
        "retention_rule",
        "erased_at",
        "restricted_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("category"))
    def category_title(self, row: PersonalDataRecord) -> str:
        return _category_title(row)

    @admin.display(description=_("fields"))
    def fields_held(self, row: PersonalDataRecord) -> str:
        return format_html_join(
            "", "{}<br>", ((label,) for label in registry.field_labels(row.category))
        )

    @admin.display(description=_("purpose"))
    def why(self, row: PersonalDataRecord) -> str:
        category = CATEGORIES.get(row.category)
        return str(category.purpose) if category else row.purpose

    @admin.display(description=_("legal basis"))
    def basis_text(self, row: PersonalDataRecord) -> str:
        return basis_text(row.basis)

    @admin.display(description=_("kept until"))
    def kept_until(self, row: PersonalDataRecord) -> str:
        return _kept_until(row)

    @admin.display(description=_("retention rule"))
    def retention_rule(self, row: PersonalDataRecord) -> str:
        category = CATEGORIES.get(row.category)
        if category is None:
            return ""
        return f"{category.rule_text} ({category.citation})"


class OrderDisclosureInline(admin.TabularInline):
    """R27 on the order: who received its personal data."""

    model = Disclosure
    verbose_name = _("disclosure")
    verbose_name_plural = _("recipients of personal data (R27)")
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["recipient", "categories", "purpose", "disclosed_at", "reference"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PersonalDataRecord)
class PersonalDataRecordAdmin(ReadOnlyAdmin):
    """R26 across orders: what is due for erasure, what is held, what is restricted."""

    list_display = [
        "order_link",
        "category_title",
        "basis",
        "keep_until",
        "hold_note",
        "erased_at",
        "restricted_at",
    ]
    list_filter = [
        "category",
        "basis",
        ("keep_until", admin.EmptyFieldListFilter),
        ("erased_at", admin.EmptyFieldListFilter),
        ("restricted_at", admin.EmptyFieldListFilter),
        "keep_until",
    ]
    search_fields = ["order__number"]
    list_select_related = ["order"]
    date_hierarchy = "keep_until"

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, row: PersonalDataRecord) -> str:
        url = reverse("admin:orders_order_change", args=[row.order_id])
        return format_html('<a href="{}">{}</a>', url, row.order.number)

    @admin.display(description=_("category"), ordering="category")
    def category_title(self, row: PersonalDataRecord) -> str:
        return _category_title(row)


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyAdmin):
    """R29: what was erased, when and why (never the erased values)."""

    list_display = ["erased_at", "order", "category", "reason", "rows", "note"]
    list_filter = ["category", "reason", "erased_at"]
    search_fields = ["order__number", "note"]
    date_hierarchy = "erased_at"
    list_select_related = ["order"]


# --- Legal holds (R28) ---------------------------------------------------------------------------


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ["order", "reason", "note"]


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    """R28: a dispute or an authority's request keeps the order's data until 3 years after
    the hold is closed."""

    form = LegalHoldForm
    list_display = ["order", "reason", "note", "opened_at", "closed_at", "opened_by"]
    list_filter = ["reason", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["order__number", "note"]
    raw_id_fields = ["order"]
    list_select_related = ["order", "opened_by"]
    actions = ["close_holds"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        hold = hold_services.place_hold(
            order_id=obj.order_id, reason=obj.reason, note=obj.note, by=request.user
        )
        obj.pk = hold.pk
        obj.opened_at = hold.opened_at

    @admin.action(description=_("Close the selected holds"), permissions=["change"])
    def close_holds(self, request, queryset):
        closed = 0
        for hold_id in sorted(queryset.filter(closed_at__isnull=True).values_list("pk", flat=True)):
            try:
                hold_services.release_hold(hold_id=hold_id)
            except Refused:
                continue
            closed += 1
        self.message_user(
            request,
            ngettext("%(n)d hold closed.", "%(n)d holds closed.", closed) % {"n": closed},
            messages.SUCCESS,
        )


# --- Data-subject requests (R30) ------------------------------------------------------------------


class StaffRequestForm(forms.ModelForm):
    """A request received by letter, in person or by phone (identity checked by staff)."""

    kind = forms.ChoiceField(
        label=_("type"),
        choices=[
            (k, label)
            for k, label in RequestKind.choices
            if k in (RequestKind.ERASURE, RequestKind.RESTRICTION, RequestKind.OBJECTION)
        ],
    )
    note = forms.CharField(label=_("what the person asked"), required=False, widget=forms.Textarea)

    class Meta:
        model = DataSubjectRequest
        fields = ["kind", "email", "received_at"]


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    """R30: the queue of requests with their one-month deadlines (Art 12(3))."""

    list_display = [
        "pk",
        "kind",
        "email",
        "status",
        "channel",
        "received_at",
        "answer_due",
        "overdue",
        "answered_at",
        "standing_restriction",
    ]
    list_filter = ["status", "kind", "channel", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["email"]
    date_hierarchy = "received_at"
    ordering = ["status", "answer_due", "pk"]
    actions = ["lift_restrictions"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = StaffRequestForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["kind", "email", "received_at", "note"]
        return [
            "kind",
            "status",
            "channel",
            "email",
            "user",
            "received_at",
            "answer_due",
            "answered_at",
            "details",
            "answer_text",
            "lifted_at",
            "keep_until",
            "erased_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            answered = request_services.receive_request(
                subject=Subject(email=obj.email.strip().lower()),
                kind=form.cleaned_data["kind"],
                details={
                    "details": form.cleaned_data.get("note", ""),
                    "entered_by": request.user.get_username(),
                },
                channel=RequestChannel.STAFF,
                received_at=obj.received_at,
            )
        except (Refused, InvalidInput) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.pk = answered.pk

    # pieprasījums is masculine in Latvian (refunds and claims are feminine).
    @admin.display(description=pgettext_lazy("data-subject request", "overdue"), boolean=True)
    def overdue(self, obj: DataSubjectRequest) -> bool:
        return obj.is_overdue

    @admin.display(description=_("restriction standing"), boolean=True)
    def standing_restriction(self, obj: DataSubjectRequest) -> bool | None:
        if obj.kind != RequestKind.RESTRICTION:
            return None
        return obj.status == RequestStatus.ANSWERED and obj.lifted_at is None

    @admin.display(description=_("answer"))
    def answer_text(self, obj: DataSubjectRequest) -> str:
        answer = obj.answer or {}
        rows = []
        for item in answer.get("erased", []):
            rows.append((_("erased"), item.get("order") or "", item.get("title", "")))
        for item in answer.get("kept", []):
            until = item.get("until") or item.get("until_text") or ""
            rows.append((_("kept"), item.get("order") or "", f"{item.get('title', '')}: {until}"))
        if not rows:
            return str(answer)
        return format_html_join("", "<div>{} {} {}</div>", rows)

    @admin.action(description=_("Lift the selected restrictions"), permissions=["change"])
    def lift_restrictions(self, request, queryset):
        lifted = 0
        for request_id in queryset.filter(
            kind=RequestKind.RESTRICTION, lifted_at__isnull=True
        ).values_list("pk", flat=True):
            try:
                request_services.lift_restriction(request_id=request_id, now=timezone.now())
            except Refused:
                continue
            lifted += 1
        self.message_user(
            request,
            ngettext("%(n)d restriction lifted.", "%(n)d restrictions lifted.", lifted)
            % {"n": lifted},
            messages.SUCCESS,
        )
