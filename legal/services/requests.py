"""Data-subject requests (R30; GDPR Art 12-21; KP13-18, IP36-43, AP9).

Every request is logged with the day it was received and its answer deadline (one month,
Art 12(3)), answered at once where the rules allow, and listed in the admin:

- access (Art 15, 20): the JSON export (legal.selectors.export_data);
- erasure (Art 17): erases what no basis still requires (consents, the account, contact and
  delivery data of orders already performed and not under a legal hold) and answers, in
  JSON and by email, what is kept, why and until when;
- restriction (Art 18): the person's data is only stored: marked on every ledger row, no
  marketing while it stands;
- objection (Art 21, IP19-21): profiling and direct marketing stop (consents withdrawn);
- rectification (Art 16): email, phone or courier address of orders still open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from legal import holds as legal_holds
from legal import registry, rules
from legal.access import Subject
from legal.models import (
    ConsentPurpose,
    ConsentSource,
    CustomerAccount,
    DataSubjectRequest,
    ErasureReason,
    PersonalDataRecord,
    RequestChannel,
    RequestKind,
    RequestStatus,
)
from legal.policy import CATEGORIES, Basis, OnRequest
from legal.selectors import basis_text, subject_orders
from legal.services import consents as consent_services
from legal.services import erasure, ledger
from shop.calendar import riga_date
from shop.errors import InvalidInput, Refused
from shop.mail import queue_email

OPEN_STATUSES = ledger.OPEN_STATUSES
RECTIFIABLE_STATUSES = {"placed", "confirmed", "paid", "shipped", "delivered"}
ADDRESS_RECTIFIABLE_STATUSES = {"placed", "confirmed", "paid"}
EXEMPTION = {
    Basis.LEGAL_OBLIGATION: "GDPR Art 17(3)(b)",
    Basis.LEGAL_CLAIMS: "GDPR Art 17(3)(e)",
    Basis.CONTRACT: "GDPR Art 17(1)(a) does not apply yet",
}


def _email_of(subject: Subject) -> str:
    """R30: a request acts for the proven email only; an account that has not proved its
    address (the link emailed at registration) files nothing in that address's name."""
    if subject.email:
        return subject.email
    if subject.user is not None:
        raise Refused(
            "email_not_verified",
            "Confirm your email first (the link we sent when you registered), or ask for a "
            "one-time link at POST /api/me/email-link/.",
        )
    raise Refused("no_identity", "Prove your email first.")


def receive_request(
    *,
    subject: Subject,
    kind: str,
    details: dict[str, Any] | None = None,
    channel: str = RequestChannel.API,
    received_at: datetime | None = None,
    now: datetime | None = None,
) -> DataSubjectRequest:
    """Log the request, then answer it. A refused request stays logged as refused.

    `received_at`: when staff enter a request that came by letter or phone earlier."""
    if kind not in RequestKind.values:
        raise InvalidInput.single("type", "invalid_choice", "Unknown type of request.")
    now = now or timezone.now()
    received_at = received_at or now
    email = _email_of(subject)
    request = DataSubjectRequest.objects.create(
        kind=kind,
        channel=channel,
        email=email,
        user=subject.user if subject.user is not None else None,
        received_at=received_at,
        answer_due=rules.request_answer_due(riga_date(received_at)),
        details=details or {},
    )
    return answer_request(request=request, subject=subject, now=now)


def answer_request(
    *, request: DataSubjectRequest, subject: Subject, now: datetime | None = None
) -> DataSubjectRequest:
    now = now or timezone.now()
    handler = HANDLERS[request.kind]
    try:
        with transaction.atomic():
            answer = handler(request, subject, now)
            request.status = RequestStatus.ANSWERED
            request.answer = answer
            request.answered_at = now
            request.keep_until = rules.request_record_until(riga_date(now))
            request.save(update_fields=["status", "answer", "answered_at", "keep_until"])
            _email_answer(request)
    except (Refused, InvalidInput) as exc:
        request.status = RequestStatus.REFUSED
        request.answer = {"code": getattr(exc, "code", "invalid_input"), "detail": str(exc)}
        request.answered_at = now
        request.keep_until = rules.request_record_until(riga_date(now))
        request.save(update_fields=["status", "answer", "answered_at", "keep_until"])
        raise
    return request


def _email_answer(request: DataSubjectRequest) -> None:
    if request.kind == RequestKind.ACCESS:
        return  # the export is the answer
    queue_email(
        to=request.email,
        template="request_answered",
        context={"request": request, "answer": request.answer},
    )


# --- Access ------------------------------------------------------------------------------------


def log_access(*, subject: Subject, orders: int, now: datetime | None = None) -> None:
    """Art 15: the export was given; logged like every request."""
    now = now or timezone.now()
    DataSubjectRequest.objects.create(
        kind=RequestKind.ACCESS,
        status=RequestStatus.ANSWERED,
        email=subject.email or "",  # an unverified account: logged under the account only
        user=subject.user,
        received_at=now,
        answer_due=rules.request_answer_due(riga_date(now)),
        answered_at=now,
        answer={"exported_orders": orders},
        keep_until=rules.request_record_until(riga_date(now)),
    )


def _access(request, subject, now) -> dict[str, Any]:
    return {"export": "GET /api/me/data/"}


# --- Erasure (Art 17) -------------------------------------------------------------------------


def _until_text(row: PersonalDataRecord, is_open: bool) -> str:
    if row.hold_note:
        # R28: open withdrawals, unsettled refunds and restrictions hold while they last; a
        # claim or dispute keeps the data 3 more years after it closes (Commercial Law §406).
        return (
            f"while the legal hold lasts ({row.hold_note}); after a conformity claim or "
            "dispute, 3 more years"
        )
    if is_open:
        return "while the order is being performed, then as the retention rule says"
    return ""


def _erasure(request, subject: Subject, now: datetime) -> dict[str, Any]:
    orders = list(subject_orders(subject).values_list("pk", "number", "status"))
    order_ids = [pk for pk, _n, _s in orders]
    ledger.recompute_ledger(order_ids=order_ids, now=now)
    info = {pk: (number, status) for pk, number, status in orders}
    held = {
        order_id
        for order_id, hs in legal_holds.holds_for(order_ids).items()
        if any(h.is_open for h in hs)
    }
    to_erase: dict[int, set[str]] = {}
    erased, kept = [], []
    for row in PersonalDataRecord.objects.filter(order_id__in=order_ids).order_by("order_id", "pk"):
        category = CATEGORIES.get(row.category)
        if category is None:
            continue
        number, status = info[row.order_id]
        is_open = status in OPEN_STATUSES
        entry = {
            "order": number,
            "category": row.category,
            "title": str(category.title),
            "fields": registry.field_labels(row.category),
        }
        if row.erased_at is not None:
            erased.append({**entry, "erased_at": row.erased_at.isoformat(), "before": True})
            continue
        if category.on_request == OnRequest.ERASE:
            continue  # consents: below
        if (
            category.on_request == OnRequest.ERASE_WHEN_FINISHED
            and not is_open
            and row.order_id not in held
        ):
            to_erase.setdefault(row.order_id, set()).add(row.category)
            erased.append({**entry, "erased_at": now.isoformat()})
            continue
        why = f"{basis_text(row.basis)}: {category.purpose}"
        if row.hold_note:
            why = f"{why} A legal hold is open: {row.hold_note}."
        kept.append(
            {
                **entry,
                "why": why,
                "basis": row.basis,
                "exemption": EXEMPTION.get(row.basis, ""),
                "until": row.keep_until.isoformat() if row.keep_until else None,
                "until_text": _until_text(row, is_open),
                "citation": category.citation,
            }
        )
    erasure.erase_order_data(items=to_erase, reason=ErasureReason.REQUEST, now=now, request=request)
    emails = {request.email}
    consents_erased = sum(
        consent_services.erase_consents_now(email=e, at=now, request=request) for e in emails
    )
    if consents_erased:
        erased.append(
            {
                "category": "consents",
                "title": str(CATEGORIES["consents"].title),
                "fields": registry.field_labels("consents"),
                "rows": consents_erased,
                "erased_at": now.isoformat(),
            }
        )
    if subject.user is not None:
        close_account(user=subject.user, now=now, request=request)
        erased.append(
            {
                "category": "account",
                "title": str(CATEGORIES["account"].title),
                "fields": registry.field_labels("account"),
                "erased_at": now.isoformat(),
            }
        )
    kept.append(
        {
            "category": "requests",
            "title": str(CATEGORIES["requests"].title),
            "fields": registry.field_labels("requests"),
            "why": f"{basis_text(Basis.LEGAL_OBLIGATION)}: {CATEGORIES['requests'].purpose}",
            "basis": Basis.LEGAL_OBLIGATION,
            "exemption": EXEMPTION[Basis.LEGAL_OBLIGATION],
            "until": rules.request_record_until(riga_date(now)).isoformat(),
            "until_text": "",
            "citation": CATEGORIES["requests"].citation,
        }
    )
    return {"erased": erased, "kept": kept}


def close_account(*, user, now: datetime, request=None) -> None:
    """KA15, AP9.4: the account goes; orders, consents and requests lose the link."""
    from rest_framework.authtoken.models import Token

    from legal.models import Consent
    from orders.models import Order

    User = get_user_model()
    Token.objects.filter(user=user).delete()
    Order.objects.filter(user=user).update(user=None)
    Consent.objects.filter(user=user).update(user=None)
    DataSubjectRequest.objects.filter(user=user).update(user=None)
    CustomerAccount.objects.filter(user=user).delete()
    marker = registry.MARKER
    User.objects.filter(pk=user.pk).update(
        username=f"{marker}-{user.pk}",
        email="",
        first_name="",
        last_name="",
        password=make_password(None),  # unusable
        is_active=False,
    )
    erasure.record_erasure(
        category="account",
        reason=ErasureReason.REQUEST,
        fields=[f"auth.User.{n}" for n in ("username", "email", "first_name", "last_name")],
        rows=1,
        note=f"account #{user.pk}",
        now=now,
        request=request,
    )
    if request is not None:
        request.user = None


# --- Restriction (Art 18) and objection (Art 21) -----------------------------------------------


def _restriction(request, subject: Subject, now: datetime) -> dict[str, Any]:
    order_ids = list(subject_orders(subject).values_list("pk", flat=True))
    ledger.recompute_ledger(order_ids=order_ids, now=now)
    PersonalDataRecord.objects.filter(order_id__in=order_ids, restricted_at__isnull=True).update(
        restricted_at=now
    )
    numbers = list(subject_orders(subject).values_list("number", flat=True))
    return {
        "restricted": True,
        "since": now.isoformat(),
        "orders": numbers,
        "effect": (
            "Your data is only stored: no marketing and no other processing, except what "
            "the law requires or legal claims need (GDPR Art 18(2))."
        ),
    }


def lift_restriction(*, request_id: int, now: datetime | None = None) -> DataSubjectRequest:
    """Staff end a restriction (Art 18(3): the person is told before it is lifted)."""
    now = now or timezone.now()
    with transaction.atomic():
        request = DataSubjectRequest.objects.select_for_update().get(pk=request_id)
        if request.kind != RequestKind.RESTRICTION or request.lifted_at is not None:
            raise Refused("not_restricted", "This request is not a standing restriction.")
        request.lifted_at = now
        request.save(update_fields=["lifted_at"])
        still = DataSubjectRequest.objects.filter(
            kind=RequestKind.RESTRICTION,
            email=request.email,
            lifted_at__isnull=True,
            status=RequestStatus.ANSWERED,
        ).exists()
        if not still:
            from orders.models import Order

            order_ids = Order.objects.filter(email=request.email).values_list("pk", flat=True)
            PersonalDataRecord.objects.filter(order_id__in=list(order_ids)).update(
                restricted_at=None
            )
    return request


def _objection(request, subject: Subject, now: datetime) -> dict[str, Any]:
    withdrawn = consent_services.withdraw_consents(
        email=request.email,
        purposes=list(ConsentPurpose.values),
        via=ConsentSource.OBJECTION,
        at=now,
    )
    return {
        "withdrawn": sorted({c.purpose for c in withdrawn}),
        "stopped": ["profiling", "direct marketing"],
        "continues": [
            {
                "processing": str(CATEGORIES["settlement"].title),
                "why": f"{basis_text(Basis.LEGAL_OBLIGATION)} (Accounting Law §28)",
            },
            {
                "processing": str(CATEGORIES["identity"].title),
                "why": (
                    f"{basis_text(Basis.LEGAL_CLAIMS)}: compelling grounds, the establishment "
                    "or defence of legal claims (GDPR Art 21(1))"
                ),
            },
        ],
    }


# --- Rectification (Art 16) -------------------------------------------------------------------


def _rectification(request, subject: Subject, now: datetime) -> dict[str, Any]:
    from orders.models import DeliveryMethod, Order
    from orders.services.locks import lock_order

    changes = dict(request.details.get("changes") or {})
    number = request.details.get("order")
    if not changes:
        raise InvalidInput.single("changes", "required", "Say what to change.")
    queryset = subject_orders(subject).filter(status__in=RECTIFIABLE_STATUSES)
    if number:
        queryset = queryset.filter(number=number)
    order_ids = list(queryset.values_list("pk", flat=True))
    if not order_ids:
        raise Refused(
            "nothing_to_rectify",
            "No open order of yours to correct; data of finished orders stays as it was "
            "(accounting records), ask for erasure instead.",
        )
    rectified, skipped = [], []
    for order_id in order_ids:
        order: Order = lock_order(order_id)
        fields = []
        if "email" in changes:
            order.email = changes["email"]
            fields.append("email")
        if "phone" in changes:
            order.phone = changes["phone"]
            fields.append("phone")
        if "address" in changes:
            address = changes["address"]
            if (
                order.delivery_method == DeliveryMethod.COURIER
                and order.status in ADDRESS_RECTIFIABLE_STATUSES
            ):
                order.street = address["street"]
                order.city = address["city"]
                order.postal_code = address["postal_code"]
                fields += ["street", "city", "postal_code"]
            else:
                skipped.append(
                    {
                        "order": order.number,
                        "field": "address",
                        "reason": "already dispatched, or delivered to a parcel machine",
                    }
                )
        if fields:
            order.save(update_fields=fields)
            rectified.append({"order": order.number, "fields": fields})
    if not rectified:
        raise Refused(
            "nothing_to_rectify",
            "None of your open orders can take these changes.",
            not_changed=skipped,
        )
    return {
        "rectified": rectified,
        "not_changed": skipped,
        "note": "Invoices already issued stay as they were issued (accounting records).",
    }


HANDLERS = {
    RequestKind.ACCESS: _access,
    RequestKind.ERASURE: _erasure,
    RequestKind.RESTRICTION: _restriction,
    RequestKind.OBJECTION: _objection,
    RequestKind.RECTIFICATION: _rectification,
}
