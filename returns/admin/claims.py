"""Conformity claims in the admin (R23-R25).

A clerk works the open claims ordered by their answer deadline (overdue ones highlighted),
enters claims received orally or on paper with the time they were received (T6.9), and
decides each claim with the actions below. Every action asks for the reason (and amounts
where money is involved) on an intermediate page and calls a service in
`returns.claims.services`; nothing on a claim is edited by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import widgets as admin_widgets
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from orders.admin.orders import ReadOnlyHistoryAdmin, ReadOnlyInline, action_page, order_link
from orders.models import Order
from returns.claims import photos as claim_photos
from returns.claims import services
from returns.models.claims import (
    CLOSED_CLAIM_STATUSES,
    OPEN_CLAIM_STATUSES,
    UNANSWERED_CLAIM_STATUSES,
    Claim,
    ClaimChannel,
    ClaimDecision,
    ClaimLine,
    ClaimPhoto,
    ClaimStatus,
    ObstacleKind,
    Remedy,
)
from shop.errors import InvalidInput, Refused

DECIDE_PERMISSION = "returns.decide_claim"

# Which decision actions make sense in which state (the services check again).
ACTIONS_BY_STATUS = {
    ClaimStatus.SUBMITTED: [
        "start_review",
        "decide_repair",
        "decide_replacement",
        "record_obstacle",
        "set_minor_defect",
        "decide_price_reduction",
        "decide_termination",
        "reject",
    ],
    ClaimStatus.UNDER_REVIEW: [
        "decide_repair",
        "decide_replacement",
        "record_obstacle",
        "set_minor_defect",
        "decide_price_reduction",
        "decide_termination",
        "reject",
    ],
    ClaimStatus.REPAIR: [
        "decide_replacement",
        "record_obstacle",
        "set_minor_defect",
        "decide_price_reduction",
        "decide_termination",
        "resolve",
        "reject",
    ],
    ClaimStatus.REPLACEMENT: [
        "decide_repair",
        "record_obstacle",
        "set_minor_defect",
        "decide_price_reduction",
        "decide_termination",
        "resolve",
        "reject",
    ],
    ClaimStatus.PRICE_REDUCTION: ["resolve"],
    ClaimStatus.TERMINATION: ["resolve"],
}


def overdue_badge() -> str:
    return format_html(
        '<span class="claim-overdue" style="background:#ba2121;color:#fff;'
        'border-radius:8px;padding:1px 7px;font-weight:bold;margin-left:4px;">{}</span>',
        _("overdue"),
    )


def refusal_text(exc: Refused | InvalidInput) -> str:
    if isinstance(exc, InvalidInput):
        return "; ".join(e["message"] for e in exc.errors)
    facts = "".join(f", {key}: {value}" for key, value in exc.facts.items())
    return f"{exc.detail} ({exc.code}{facts})"


# --- Filters ------------------------------------------------------------------------------


class ClaimStateFilter(admin.SimpleListFilter):
    """Open claims unless asked otherwise: the work queue comes first."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            # Plural feminine in Latvian (pretenzijas), unlike the order status "Closed".
            ("open", pgettext_lazy("claims filter", "Open")),
            ("unanswered", _("Waiting for an answer")),
            ("closed", pgettext_lazy("claims filter", "Closed")),
            ("all", pgettext_lazy("claims filter", "All")),
        ]

    def value(self):
        return super().value() or "open"

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == "open":
            return queryset.filter(status__in=OPEN_CLAIM_STATUSES)
        if value == "unanswered":
            return queryset.filter(status__in=UNANSWERED_CLAIM_STATUSES)
        if value == "closed":
            return queryset.filter(status__in=CLOSED_CLAIM_STATUSES)
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    """R25: not answered by the end of the answer deadline."""

    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        overdue = {"status__in": UNANSWERED_CLAIM_STATUSES, "answer_deadline__lt": timezone.now()}
        if self.value() == "yes":
            return queryset.filter(**overdue)
        if self.value() == "no":
            return queryset.exclude(**overdue)
        return queryset


# --- Forms --------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Why"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        help_text=_("Recorded with the decision; the customer sees it in the email."),
    )

    def __init__(self, *args, claim: Claim | None = None, **kwargs):
        self.claim = claim
        super().__init__(*args, **kwargs)


class ObstacleForm(ReasonForm):
    obstacle = forms.ChoiceField(label=_("Repair and replacement"), choices=ObstacleKind.choices)


class MinorDefectForm(ReasonForm):
    minor = forms.BooleanField(
        label=_("The non-conformity is minor (T6.8)"),
        required=False,
        initial=True,
        help_text=_("Untick to record that it is not minor."),
    )


class MoneyDecisionForm(ReasonForm):
    """Price reduction or termination: the obstacle (unless recorded before) and one
    amount per claim line."""

    amount_label = _("Amount")
    amount_help = ""
    amount_required = True

    obstacle = forms.ChoiceField(
        label=_("Repair and replacement"),
        choices=[("", _("— as recorded before —")), *ObstacleKind.choices],
        required=False,
    )
    obstacle_reason = forms.CharField(
        label=_("Staff reasons (why repair and replacement are excluded)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
    )

    def __init__(self, *args, claim: Claim, **kwargs):
        super().__init__(*args, claim=claim, **kwargs)
        if claim.primary_remedy_excluded():
            self.fields["obstacle"].help_text = _("Recorded: %(kind)s. %(reason)s") % {
                "kind": claim.get_obstacle_display(),
                "reason": claim.obstacle_reason,
            }
        for line in claim.lines.select_related("order_line").order_by("pk"):
            self.fields[f"line_{line.pk}"] = forms.DecimalField(
                label=f"{self.amount_label}: {line.order_line.sku} × {line.quantity} "
                f"({line.order_line.unit_price} EUR)",
                min_value=0,
                max_digits=12,
                decimal_places=2,
                required=False,
                help_text=self.amount_help,
            )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("obstacle") and not (cleaned.get("obstacle_reason") or "").strip():
            self.add_error("obstacle_reason", _("Give the reasons."))
        return cleaned


class PriceReductionForm(MoneyDecisionForm):
    amount_label = _("Reduction, EUR")
    amount_help = _("Never more than what was paid for the goods (R24).")


class TerminationForm(MoneyDecisionForm):
    amount_label = _("Allowance for use kept, EUR")
    amount_help = _("Agreed with the customer; empty means none. At most the price (T6.7).")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class StaffClaimForm(forms.Form):
    """T6.9: a claim made orally or on paper, entered with the time it was received."""

    order_number = forms.CharField(label=_("Order number"), max_length=16)
    channel = forms.ChoiceField(
        label=_("Received"),
        choices=[(c.value, c.label) for c in ClaimChannel if c != ClaimChannel.API],
    )
    received_at = forms.SplitDateTimeField(
        label=_("Received at (Riga time)"), widget=admin_widgets.AdminSplitDateTime()
    )
    discovered_on = forms.DateField(
        label=_("Defect discovered on"), widget=admin_widgets.AdminDateWidget()
    )
    lines = forms.CharField(
        label=_("Goods"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text=_("One line per product: SKU and quantity, for example “KEU-001 1”."),
    )
    remedy = forms.ChoiceField(label=_("Remedy asked for"), choices=Remedy.choices)
    description = forms.CharField(
        label=_("Description of the defect"),
        max_length=services.MAX_DESCRIPTION,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 70}),
    )
    photos = MultipleFileField(
        label=_("Photos or documents"),
        required=False,
        help_text=_("Up to %(n)d JPEG, PNG or PDF files of at most %(mb)d MB each.")
        % {"n": claim_photos.MAX_PHOTOS, "mb": claim_photos.MAX_PHOTO_BYTES // (1024 * 1024)},
    )
    iban = forms.CharField(label=_("IBAN for refunds (optional)"), max_length=42, required=False)
    account_holder = forms.CharField(label=_("Account holder"), max_length=140, required=False)

    def clean_order_number(self):
        number = self.cleaned_data["order_number"].strip().upper()
        order = Order.objects.filter(number=number).first()
        if order is None:
            raise forms.ValidationError(_("No order with this number."), code="unknown_order")
        self.order = order
        return number

    def clean_lines(self):
        requested = []
        for row in self.cleaned_data["lines"].splitlines():
            parts = row.replace("×", " ").replace(",", " ").split()
            if not parts:
                continue
            sku, quantity = parts[0], (parts[1] if len(parts) > 1 else "1")
            if len(parts) > 2 or not quantity.isdigit() or int(quantity) < 1:
                raise forms.ValidationError(
                    _("Write each line as SKU and quantity, for example “KEU-001 1”."),
                    code="invalid",
                )
            requested.append(services.ClaimLineRequest(sku=sku, quantity=int(quantity)))
        if not requested:
            raise forms.ValidationError(_("Name at least one product."), code="required")
        return requested


# --- Decisions ----------------------------------------------------------------------------

# What a decision does to one claim: `apply(claim, cleaned form data, user)` calls a service.
Apply = Callable[[Claim, dict, object], object]


def claim_decision(
    *,
    description: str,
    title: str,
    form_class: type[ReasonForm] | None = ReasonForm,
    single: bool = False,
):
    """Makes a `ClaimAdmin` action (permission: decide) of `apply`, the function it decorates.

    The action asks for the reason (and amounts) on an intermediate page with `form_class`
    (None: it acts at once), calls `apply(claim, data, user)` for each selected claim, and
    reports how many were decided and why the others were refused (`ClaimAdmin._decision`).
    `single`: a decision about exactly one claim (its amounts are per claim line). The
    action's name, posted back by the intermediate page, is the decorated function's."""

    def decorate(apply: Apply):
        @admin.action(description=description, permissions=["decide"])
        @wraps(apply)
        def action(model_admin: ClaimAdmin, request, queryset):
            return model_admin._decision(
                request,
                queryset,
                action=apply.__name__,
                title=title,
                form_class=form_class,
                apply=apply,
                single=single,
            )

        return action

    return decorate


def form_per_line(data: dict) -> dict[int, object]:
    return {
        int(name.removeprefix("line_")): value
        for name, value in data.items()
        if name.startswith("line_") and value is not None
    }


def money_terms(data: dict) -> dict[str, str]:
    """Of a price reduction or termination form: the reason and, where not recorded before,
    why repair and replacement are excluded."""
    return {
        "reason": data["reason"],
        "obstacle": data.get("obstacle") or "",
        "obstacle_reason": data.get("obstacle_reason") or "",
    }


# --- Inlines ------------------------------------------------------------------------------


class ClaimLineInline(ReadOnlyInline):
    model = ClaimLine
    fields = ["sku", "product_name", "quantity", "unit_price", "allowance", "refund_amount"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_line")

    @admin.display(description=_("SKU"))
    def sku(self, obj: ClaimLine) -> str:
        return obj.order_line.sku

    @admin.display(description=_("product"))
    def product_name(self, obj: ClaimLine) -> str:
        return obj.order_line.name_lv

    @admin.display(description=_("unit price"))
    def unit_price(self, obj: ClaimLine) -> str:
        return str(obj.order_line.unit_price)


class ClaimPhotoInline(ReadOnlyInline):
    model = ClaimPhoto
    fields = ["content_type", "size", "uploaded_at", "download"]
    readonly_fields = fields

    @admin.display(description=_("file"))
    def download(self, obj: ClaimPhoto) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:returns_claim_photo", args=[obj.claim_id, obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))


class ClaimDecisionInline(ReadOnlyInline):
    model = ClaimDecision
    fields = ["decided_at", "kind", "from_status", "to_status", "decided_by", "reason", "amount"]
    readonly_fields = fields
    ordering = ["decided_at", "pk"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("decided_by")


# --- The claim admin ----------------------------------------------------------------------


@admin.register(Claim)
class ClaimAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "id",
        "order_number",
        "status",
        "remedy_requested",
        "received_at",
        "deadline",
        "flags",
        "channel",
    ]
    list_display_links = ["id"]
    list_select_related = ["order"]
    list_filter = [
        ClaimStateFilter,
        OverdueFilter,
        "status",
        "channel",
        "late_notice",
        "is_warranty_claim",
        "minor_defect",
    ]
    search_fields = ["=id", "order__number"]
    ordering = ["answer_deadline", "pk"]
    inlines = [ClaimLineInline, ClaimPhotoInline, ClaimDecisionInline]
    change_form_template = "admin/returns/claim/change_form.html"
    actions = [
        "start_review",
        "decide_repair",
        "decide_replacement",
        "record_obstacle",
        "set_minor_defect",
        "decide_price_reduction",
        "decide_termination",
        "resolve",
        "reject",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order_link",
                    "status",
                    "channel",
                    "entered_by",
                    "remedy_requested",
                    "description",
                    "discovered_on",
                ]
            },
        ),
        (
            _("Deadlines (R23, R25)"),
            {
                "fields": [
                    "received_at",
                    "deadline",
                    "answered_at",
                    "overdue_flagged_at",
                    "late_notice",
                    "is_warranty_claim",
                    "closed_at",
                ]
            },
        ),
        (
            _("Assessment (R24)"),
            {"fields": ["minor_defect", "obstacle", "obstacle_reason"]},
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "entered_by")

    def has_change_permission(self, request, obj=None):
        return False  # claims change only through the decision actions (services)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION)

    def save_model(self, request, obj, form, change):
        raise PermissionDenied

    # Columns.

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj: Claim) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("order"))
    def order_link(self, obj: Claim) -> str:
        return order_link(obj.order_id, obj.order.number)

    @admin.display(description=_("answer deadline"), ordering="answer_deadline")
    def deadline(self, obj: Claim) -> str:
        shown = timezone.localtime(obj.answer_deadline).strftime("%Y-%m-%d")
        if obj.is_overdue():
            return format_html("{}{}", shown, overdue_badge())
        return shown

    @admin.display(description=_("flags"))
    def flags(self, obj: Claim) -> str:
        flags = []
        if obj.late_notice:
            flags.append(_("late notice"))
        if obj.is_warranty_claim:
            flags.append(_("warranty"))
        if obj.minor_defect:
            flags.append(_("minor"))
        return ", ".join(str(flag) for flag in flags) or "-"

    # Staff entry of oral and paper claims (T6.9).

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StaffClaimForm(
            request.POST or None, request.FILES or None, initial={"received_at": timezone.now()}
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                claim = services.receive_claim(
                    order_id=form.order.pk,
                    lines=data["lines"],
                    description=data["description"],
                    discovered_on=data["discovered_on"],
                    remedy=data["remedy"],
                    channel=data["channel"],
                    received_at=data["received_at"],
                    photos_in=data["photos"],
                    entered_by=request.user,
                    iban=data["iban"],
                    account_holder=data["account_holder"],
                )
            except (Refused, InvalidInput) as exc:
                form.add_error(None, refusal_text(exc))
            else:
                self.message_user(
                    request,
                    _("Claim %(id)s entered; answer by %(deadline)s. The customer was emailed.")
                    % {
                        "id": claim.pk,
                        "deadline": timezone.localtime(claim.answer_deadline).date(),
                    },
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:returns_claim_change", args=[claim.pk]))
        return TemplateResponse(
            request,
            "admin/returns/claim/enter_claim.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Enter a claim received orally or on paper"),
                "opts": self.model._meta,
                "form": form,
                "media": self.media + form.media,
            },
        )

    # The change page: buttons for the decisions possible now.

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        claim = self.get_object(request, unquote(object_id))
        if claim is not None and self.has_decide_permission(request):
            actions = self.get_actions(request)
            extra_context["decision_actions"] = [
                (name, actions[name][2])
                for name in ACTIONS_BY_STATUS.get(claim.status, [])
                if name in actions
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/photos/<int:photo_id>/",
                self.admin_site.admin_view(self.photo_view),
                name="returns_claim_photo",
            ),
            *super().get_urls(),
        ]

    def photo_view(self, request, object_id, photo_id):
        claim = self.get_object(request, unquote(object_id))
        if claim is None:
            raise Http404(_("No such claim."))
        if not self.has_view_permission(request, claim):
            raise PermissionDenied
        photo = claim.photos.filter(pk=photo_id).first()
        if photo is None:
            raise Http404(_("No such file."))
        extension = photo.file.name.rsplit(".", 1)[-1]
        response = FileResponse(
            photo.file.open("rb"),
            as_attachment=True,
            filename=f"claim-{claim.pk}-{photo.pk}.{extension}",
            content_type=photo.content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    # Actions: each is a `claim_decision` around the one service call that decides a claim.

    def _decision(
        self,
        request,
        queryset,
        *,
        action: str,
        title: str,
        form_class: type[ReasonForm] | None,
        apply: Apply,
        single: bool = False,
    ):
        claims = list(queryset.select_related("order").order_by("pk"))
        if single and len(claims) != 1:
            self.message_user(
                request, _("Select exactly one claim for this decision."), messages.WARNING
            )
            return None
        from_change = request.POST.get("_from_change")
        form = None
        if form_class is not None:
            data = request.POST if request.POST.get("apply") else None
            form = form_class(data, claim=claims[0] if single else None)
            if not (form.is_bound and form.is_valid()):
                return action_page(
                    self,
                    request,
                    "admin/returns/claim/decision_form.html",
                    title=title,
                    selected=claims,
                    form=form,
                    action=action,
                    from_change=from_change,
                )
        done, refused = 0, []
        for claim in claims:
            try:
                apply(claim, form.cleaned_data if form is not None else {}, request.user)
                done += 1
            except (Refused, InvalidInput) as exc:
                refused.append(f"#{claim.pk}: {refusal_text(exc)}")
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(n)d claim decided: %(title)s.", "%(n)d claims decided: %(title)s.", done
                )
                % {"n": done, "title": title},
                messages.SUCCESS,
            )
        for text in refused:
            self.message_user(request, text, messages.ERROR)
        if from_change and len(claims) == 1:
            return HttpResponseRedirect(reverse("admin:returns_claim_change", args=[claims[0].pk]))
        return None

    @claim_decision(description=_("Start the review"), title=_("Start the review"), form_class=None)
    def start_review(claim, data, user):
        return services.start_review(claim_id=claim.pk, by=user)

    @claim_decision(description=_("Decide: repair…"), title=_("Repair, free of charge"))
    def decide_repair(claim, data, user):
        return services.decide_repair(claim_id=claim.pk, reason=data["reason"], by=user)

    @claim_decision(
        description=_("Decide: replacement…"),
        title=_("Replacement, free of charge and shipped free"),
    )
    def decide_replacement(claim, data, user):
        return services.decide_replacement(claim_id=claim.pk, reason=data["reason"], by=user)

    @claim_decision(
        description=_("Record: repair and replacement impossible, disproportionate or failed…"),
        title=_("Why repair and replacement are excluded"),
        form_class=ObstacleForm,
    )
    def record_obstacle(claim, data, user):
        return services.record_obstacle(
            claim_id=claim.pk, kind=data["obstacle"], reason=data["reason"], by=user
        )

    @claim_decision(
        description=_("Assess: minor non-conformity…"),
        title=_("Minor non-conformity (T6.8)"),
        form_class=MinorDefectForm,
    )
    def set_minor_defect(claim, data, user):
        return services.set_minor_defect(
            claim_id=claim.pk, minor=data["minor"], reason=data["reason"], by=user
        )

    @claim_decision(
        description=_("Decide: price reduction…"),
        title=_("Price reduction with refund"),
        form_class=PriceReductionForm,
        single=True,
    )
    def decide_price_reduction(claim, data, user):
        return services.decide_price_reduction(
            claim_id=claim.pk, amounts=form_per_line(data), by=user, **money_terms(data)
        )

    @claim_decision(
        description=_("Decide: termination with refund…"),
        title=_("Termination with refund, less the allowance for use"),
        form_class=TerminationForm,
        single=True,
    )
    def decide_termination(claim, data, user):
        return services.decide_termination(
            claim_id=claim.pk, allowances=form_per_line(data), by=user, **money_terms(data)
        )

    @claim_decision(
        description=_("Mark resolved…"), title=_("Resolved: the remedy was carried out")
    )
    def resolve(claim, data, user):
        return services.resolve_claim(claim_id=claim.pk, reason=data["reason"], by=user)

    @claim_decision(description=_("Reject…"), title=_("Reject the claim"))
    def reject(claim, data, user):
        return services.reject_claim(claim_id=claim.pk, reason=data["reason"], by=user)
