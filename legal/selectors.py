"""Reads of the legal app: the person's data export (R30), recipients (R27, IP38), the
ledger (R26), restriction (Art 18)."""

from __future__ import annotations

import base64
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import SuspiciousFileOperation
from django.db.models import F, QuerySet
from django.utils import timezone

from legal import registry
from legal.access import Subject
from legal.models import (
    Consent,
    DataSubjectRequest,
    Disclosure,
    PersonalDataRecord,
    PrivacyPolicyVersion,
    RequestKind,
    RequestStatus,
    TermsVersion,
)
from legal.policy import CATEGORIES, Basis
from shop import reference
from shop.calendar import end_of_day, start_of_day

# Shown in sections of their own (consents, requests, account), or a technical copy of
# what the order already shows (the stored answer of an idempotent checkout, which also
# holds the order's access token).
EXPORT_EXCLUDED_MODELS = {
    "legal.Consent",
    "legal.DataSubjectRequest",
    "auth.User",
    "orders.IdempotencyRecord",
}


def is_restricted(email: str | None) -> bool:
    """GDPR Art 18: a standing restriction of processing for this email."""
    if not email:
        return False
    return DataSubjectRequest.objects.filter(
        kind=RequestKind.RESTRICTION,
        status=RequestStatus.ANSWERED,
        email=email.strip().lower(),
        lifted_at__isnull=True,
        erased_at__isnull=True,
    ).exists()


def subject_orders(subject: Subject) -> QuerySet:
    from orders.models import Order

    return Order.objects.filter(subject.orders_q()).order_by("placed_at", "pk")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _column(model, name: str) -> str:
    """The value column of a field: the id for a foreign key."""
    field = model._meta.get_field(name)
    return field.attname if field.is_relation else name


# --- The ledger (R26) ---------------------------------------------------------------------------


def basis_text(code: str) -> str:
    try:
        return str(Basis(code).label)
    except ValueError:
        return code


def ledger_entry(row: PersonalDataRecord) -> dict[str, Any]:
    category = CATEGORIES.get(row.category)
    return {
        "category": row.category,
        "annex": category.annex if category else "",
        "title": str(category.title) if category else row.category,
        "fields": [f"{label}.{name}" for label, name in registry.fields_of(row.category)],
        "field_labels": registry.field_labels(row.category),
        "purpose": str(category.purpose) if category else row.purpose,
        "basis": row.basis,
        "basis_text": basis_text(row.basis),
        "rule": str(category.rule_text) if category else "",
        "citation": category.citation if category else "",
        "keep_until": row.keep_until,
        "legal_hold": row.hold_note,
        "erased_at": row.erased_at,
        "restricted_at": row.restricted_at,
    }


def ledgers(order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in PersonalDataRecord.objects.filter(order_id__in=order_ids).order_by("order_id", "pk"):
        out[row.order_id].append(ledger_entry(row))
    return out


def retention_policy() -> list[dict[str, Any]]:
    return [
        {
            "category": c.code,
            "annex": c.annex,
            "title": str(c.title),
            "purpose": str(c.purpose),
            "basis": basis_text(c.basis),
            "basis_after_the_contract": basis_text(c.basis_after),
            "retention": str(c.rule_text),
            "citation": c.citation,
            "fields": registry.field_labels(c.code),
        }
        for c in CATEGORIES.values()
    ]


# --- Recipients (R27, IP38) -----------------------------------------------------------------


def disclosures_of(subject: Subject, *, date_from: date | None = None, date_to: date | None = None):
    order_ids = list(subject_orders(subject).values_list("pk", flat=True))
    queryset = Disclosure.objects.filter(order_id__in=order_ids, withheld_from_subject=False)
    if date_from:
        queryset = queryset.filter(disclosed_at__gte=start_of_day(date_from))
    if date_to:
        queryset = queryset.filter(disclosed_at__lte=end_of_day(date_to))
    return queryset.select_related("order").order_by("disclosed_at", "pk")


def disclosure_entry(disclosure: Disclosure) -> dict[str, Any]:
    categories = disclosure.categories if isinstance(disclosure.categories, list) else []
    return {
        "recipient": disclosure.recipient,
        "recipient_name": str(disclosure.get_recipient_display()),
        "categories": [str(c) for c in categories],
        "purpose": disclosure.purpose,
        "disclosed_at": disclosure.disclosed_at,
        "order": disclosure.order.number if disclosure.order_id else None,
    }


def recipients(
    subject: Subject, *, date_from: date | None = None, date_to: date | None = None
) -> dict[str, Any]:
    """IP38: who received the person's data in a period, per recipient and in detail."""
    entries = [
        disclosure_entry(d) for d in disclosures_of(subject, date_from=date_from, date_to=date_to)
    ]
    summary: dict[str, dict[str, Any]] = {}
    for entry in entries:
        item = summary.setdefault(
            entry["recipient"],
            {
                "recipient": entry["recipient"],
                "recipient_name": entry["recipient_name"],
                "categories": [],
                "purposes": [],
                "first": entry["disclosed_at"],
                "last": entry["disclosed_at"],
                "count": 0,
            },
        )
        item["count"] += 1
        item["last"] = entry["disclosed_at"]
        for category in entry["categories"]:
            if category not in item["categories"]:
                item["categories"].append(category)
        if entry["purpose"] not in item["purposes"]:
            item["purposes"].append(entry["purpose"])
    return {
        "from": date_from,
        "to": date_to,
        "recipients": list(summary.values()),
        "disclosures": entries,
    }


# --- The export (R30: Art 15, 20) -----------------------------------------------------------


@dataclass
class _Section:
    """One model's part of each order in the export."""

    key: str
    path: str  # lookup to the order's id
    columns: list[str]
    within: str | None = None  # the parent section's model label
    parent_path: str | None = None  # this model's column holding the parent's id
    related: dict[str, str] = field(default_factory=dict)
    files: dict[str, registry.ExportedFile] = field(default_factory=dict)


def _order_sections() -> dict[str, _Section]:
    """model label -> its section, for everything tied to an order."""
    sections: dict[str, _Section] = {}
    exportables = registry.exportables()
    for label, exp in exportables.items():
        if exp.order_path is None or label in EXPORT_EXCLUDED_MODELS:
            continue
        sections[label] = _Section(
            key=exp.key,
            path=exp.order_path,
            columns=list(exp.fields),
            within=exp.within,
            parent_path=exp.parent_path,
            related=dict(exp.related),
            files=dict(exp.files),
        )
    for fieldset in registry.fieldsets():
        label = fieldset.model_label
        if fieldset.order_path is None or label in EXPORT_EXCLUDED_MODELS:
            continue
        section = sections.setdefault(
            label, _Section(key=label, path=fieldset.order_path, columns=[])
        )
        for name in fieldset.fields:
            if name not in section.columns:
                section.columns.append(name)
    for section in sections.values():
        if section.within is not None and section.within not in sections:
            section.within = section.parent_path = None  # its parent is not exported
    return sections


def _file_entry(
    stored: str | None, row: dict[str, Any], described: registry.ExportedFile, storage
) -> Any:
    """A stored file as the person sees it: name, type, size and, where a customer
    endpoint serves it, the link to open it while authenticated. Erased: the marker."""
    if not stored or stored == registry.MARKER:
        return stored or None
    size = row.get(described.size) if described.size else None
    if described.size is None:
        try:
            size = storage.size(stored)  # the storage, not the database
        except (OSError, NotImplementedError, SuspiciousFileOperation):
            size = None  # gone from storage: the name and type still tell what it was
    entry = {
        "name": stored.rsplit("/", 1)[-1],
        "content_type": row.get(described.content_type) if described.content_type else None,
        "size": size,
    }
    if described.url is not None:
        entry["url"] = described.url(row)
    return entry


def _section_rows(model, section: _Section, order_ids: list[int]) -> list[dict[str, Any]]:
    """One query per section, whatever the number of rows (R30: no query per row)."""
    values = [_column(model, name) for name in section.columns]
    extra = [section.parent_path] if section.parent_path else []
    related = {alias: F(lookup) for alias, lookup in section.related.items()}
    rows = model._base_manager.filter(**{f"{section.path}__in": order_ids}).order_by("pk")
    out = []
    for row in rows.values(section.path, "pk", *extra, *values, **related):
        for name, described in section.files.items():
            column = _column(model, name)
            if column in row:
                row[column] = _file_entry(
                    row[column], row, described, model._meta.get_field(name).storage
                )
        out.append(row)
    return out


def _order_data(order_ids: list[int]) -> dict[int, dict[str, Any]]:
    from django.apps import apps

    orders: dict[int, dict[str, Any]] = {pk: {} for pk in order_ids}
    sections = _order_sections()
    fetched: dict[str, list[dict[str, Any]]] = {}
    by_pk: dict[str, dict[Any, dict[str, Any]]] = {}
    for label, section in sections.items():
        fetched[label] = _section_rows(apps.get_model(label), section, order_ids)
        by_pk[label] = {row["pk"]: row for row in fetched[label]}
    for label, section in sections.items():
        for row in fetched[label]:
            order_id = row.pop(section.path)
            if section.key == "order":
                row.pop("pk")
                orders[order_id].update(row)
                continue
            parent = None
            if section.within is not None:
                parent = by_pk[section.within].get(row.pop(section.parent_path))
            target = parent if parent is not None else orders[order_id]
            target.setdefault(section.key, []).append(row)
    return {pk: jsonable(entry) for pk, entry in orders.items()}


def export_data(subject: Subject) -> dict[str, Any]:
    """Everything held about the person, as JSON (R30, GDPR Art 15 and 20): the orders,
    consents, requests and emails of the proven email, and the account's own."""
    order_ids = list(subject_orders(subject).values_list("pk", flat=True))
    orders = _order_data(order_ids)
    order_ledgers = ledgers(order_ids)
    by_order: dict[int, list] = defaultdict(list)
    for disclosure in Disclosure.objects.filter(
        order_id__in=order_ids, withheld_from_subject=False
    ).order_by("disclosed_at", "pk"):
        by_order[disclosure.order_id].append(disclosure)
    order_list = []
    for pk in order_ids:
        entry = orders[pk]
        entry["personal_data"] = jsonable(order_ledgers.get(pk, []))
        entry["recipients"] = jsonable([disclosure_entry(d) for d in by_order.get(pk, [])])
        order_list.append(entry)

    # R30: only a proven address; an account that has not proved its email gets its own
    # account data and what it did itself, nothing sent to or given under that address.
    emails = set(subject.emails)
    consents = Consent.objects.filter(erased_at__isnull=True)
    consent_rows = consents.filter(email__in=emails) if emails else consents.none()
    if subject.user is not None:
        consent_rows = consent_rows | consents.filter(user=subject.user)
    requests = DataSubjectRequest.objects.filter(erased_at__isnull=True)
    request_rows = requests.filter(email__in=emails) if emails else requests.none()
    if subject.user is not None:
        request_rows = request_rows | requests.filter(user=subject.user)

    return jsonable(
        {
            "generated_at": timezone.now(),
            "subject": {
                "email": subject.email,
                "account": _account(subject.user),
            },
            "orders": order_list,
            "consents": [
                {
                    "purpose": c.purpose,
                    "email": c.email,
                    "given_at": c.given_at,
                    "confirmed_at": c.confirmed_at,
                    "withdrawn_at": c.withdrawn_at,
                    "source": c.source,
                    "withdrawn_via": c.withdrawn_via,
                    "policy_version": c.policy_version.version if c.policy_version else None,
                    "text_version": c.text_version,
                    "order": c.order.number if c.order_id else None,
                    "kept_until": c.keep_until,
                }
                for c in consent_rows.distinct().select_related("policy_version", "order")
            ],
            "requests": [
                {
                    "id": r.pk,
                    "type": r.kind,
                    "status": r.status,
                    "email": r.email,
                    "received_at": r.received_at,
                    "answer_due": r.answer_due,
                    "answered_at": r.answered_at,
                    "details": r.details,
                    "answer": r.answer,
                }
                for r in request_rows.distinct().order_by("received_at", "pk")
            ],
            "recipients": [disclosure_entry(d) for pk in order_ids for d in by_order.get(pk, [])],
            "communications": communications(emails),
            "retention_policy": retention_policy(),
        }
    )


def _account(user) -> dict[str, Any] | None:
    if user is None:
        return None
    account = getattr(user, "customer_account", None)
    return {
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "email_verified_at": account.email_verified_at if account else None,
    }


def communications(emails: set[str]) -> list[dict[str, Any]]:
    """KA7: the emails the shop sent to the person, as they were sent."""
    from shop.models import OutboxMessage

    out = []
    for email in sorted(emails):
        for message in OutboxMessage.objects.filter(
            topic="email.send", payload__to__0=email
        ).order_by("pk"):
            payload = message.payload or {}
            if "erased" in payload:
                continue
            out.append(
                {
                    "sent_at": message.delivered_at,
                    "queued_at": message.created_at,
                    "to": payload.get("to"),
                    "subject": payload.get("subject"),
                    "body": payload.get("body"),
                    "template": payload.get("template"),
                }
            )
    return out


# --- Document versions in force (read on every checkout; shop.reference) ----------------

reference.watch(TermsVersion, PrivacyPolicyVersion)


def _versions(model) -> list:
    """All versions, latest first, without their texts."""
    return list(model.objects.defer("text_lv", "text_en").order_by("-effective_from", "-pk"))


def terms_in_force(at: datetime | None = None) -> TermsVersion | None:
    """T1.5: the terms version in force at `at` (its texts are loaded when read)."""
    return reference.in_force(reference.cached("terms", lambda: _versions(TermsVersion)), at)


def privacy_policy_in_force(at: datetime | None = None) -> PrivacyPolicyVersion | None:
    versions = reference.cached("policies", lambda: _versions(PrivacyPolicyVersion))
    return reference.in_force(versions, at)
