"""Consents (R31): per purpose, separate from ordering, with the privacy-policy version in
force, the wording's version, the time and the source; withdrawing is as easy as giving
and takes effect at once. A withdrawn consent's data is erased within 3 working days
(IP15) by the retention sweep.

Double opt-in (R31): a consent counts only once the owner of the address confirmed it.
Given under a proven email (the API needs one) it is confirmed at once; given at checkout,
where anyone can type any address, it waits for the link emailed to the address
(`ask_confirmation`, `confirm_consents`). Withdrawing works on pending consents too.

Marketing messages go out only through `queue_marketing_email`, which refuses without a
standing consent (or while processing is restricted) and always adds the unsubscribe link
(AP4.3). The link carries a signed reference to the consent, never the email address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from legal.models import Consent, ConsentPurpose, ConsentSource, PrivacyPolicyVersion
from legal.selectors import is_restricted
from legal.services import ledger
from legal.services.optin import CONFIRM_LINK, CONFIRM_MAX_AGE, ask_confirmation
from shop import outbox, tokens
from shop.calendar import riga_date
from shop.errors import InvalidInput, Refused
from shop.mail import render_bilingual

UNSUBSCRIBE_LINK = "unsubscribe"
UNSUBSCRIBE_MAX_AGE = 10 * 365 * 24 * 3600  # links in old newsletters keep working


def _check_purpose(purpose: str) -> str:
    if purpose not in ConsentPurpose.values:
        raise InvalidInput.single(
            "purpose",
            "invalid_choice",
            "Unknown purpose; one of: " + ", ".join(ConsentPurpose.values),
        )
    return purpose


def active_consents(email: str, purpose: str | None = None):
    queryset = Consent.objects.filter(
        email__iexact=email, withdrawn_at__isnull=True, erased_at__isnull=True
    )
    if purpose:
        queryset = queryset.filter(purpose=purpose)
    return queryset


def give_consent(
    *,
    email: str,
    purpose: str,
    source: str = ConsentSource.API,
    user=None,
    order=None,
    text_version: str = "",
    at: datetime | None = None,
    confirmed: bool = False,
) -> tuple[Consent, bool]:
    """R31: record a consent (or return the one already standing); (consent, created).

    `confirmed`: the caller proved `email` (a verified account or the one-time link);
    otherwise the consent is pending until the emailed link confirms it."""
    _check_purpose(purpose)
    at = at or timezone.now()
    email = email.strip().lower()
    with transaction.atomic():
        existing = active_consents(email, purpose).select_for_update().first()
        if existing is not None:
            if confirmed and existing.confirmed_at is None:
                existing.confirmed_at = at
                existing.save(update_fields=["confirmed_at"])
            return existing, False
        policy = PrivacyPolicyVersion.objects.in_force(at)
        consent = Consent.objects.create(
            email=email,
            user=user if user is not None and user.is_authenticated else None,
            order=order,
            purpose=purpose,
            given_at=at,
            confirmed_at=at if confirmed else None,
            policy_version=policy,
            text_version=text_version or (policy.version if policy else ""),
            source=source,
        )
        if not confirmed:
            ask_confirmation(email=email, token=tokens.sign(CONFIRM_LINK, f"c{consent.pk}"))
    return consent, True


def pending_for_token(token: str):
    """The pending consents a confirmation link names (empty for a bad or old link)."""
    try:
        value = tokens.unsign(CONFIRM_LINK, token, max_age=CONFIRM_MAX_AGE)
    except tokens.InvalidLink:
        return Consent.objects.none()
    kind, ident = value[:1], value[1:]
    if not ident.isdigit() or kind not in ("c", "o"):
        return Consent.objects.none()
    rows = Consent.objects.filter(
        confirmed_at__isnull=True, withdrawn_at__isnull=True, erased_at__isnull=True
    )
    return rows.filter(pk=int(ident)) if kind == "c" else rows.filter(order_id=int(ident))


def confirm_consents(*, token: str, at: datetime | None = None) -> list[Consent]:
    """R31: the owner of the address confirms; the consents count from now on."""
    at = at or timezone.now()
    with transaction.atomic():
        consents = list(pending_for_token(token).select_for_update().order_by("pk"))
        for consent in consents:
            consent.confirmed_at = at
        Consent.objects.bulk_update(consents, ["confirmed_at"])
    return consents


def withdraw_consents(
    *,
    email: str | None = None,
    purposes: list[str] | None = None,
    via: str = ConsentSource.API,
    at: datetime | None = None,
    user=None,
) -> list[Consent]:
    """R31: withdraw at once; the data goes within 3 working days (IP15). Idempotent.

    By `email` (proven by the caller), or by `user`: the consents that account gave."""
    for purpose in purposes or []:
        _check_purpose(purpose)
    if (email is None) == (user is None):
        raise TypeError("withdraw_consents takes either email or user")
    at = at or timezone.now()
    with transaction.atomic():
        if email is not None:
            queryset = active_consents(email)
        else:
            queryset = Consent.objects.filter(
                user=user, withdrawn_at__isnull=True, erased_at__isnull=True
            )
        if purposes:
            queryset = queryset.filter(purpose__in=purposes)
        consents = list(queryset.select_for_update().order_by("pk"))
        for consent in consents:
            consent.withdrawn_at = at
            consent.withdrawn_via = via
            consent.keep_until = riga_date(at)
        Consent.objects.bulk_update(consents, ["withdrawn_at", "withdrawn_via", "keep_until"])
        order_ids = {c.order_id for c in consents if c.order_id}
        if order_ids:
            ledger.recompute_ledger(order_ids=order_ids)
    return consents


def erase_consents_now(*, email: str, at: datetime | None = None, request=None) -> int:
    """Erasure request (Art 17(1)(b)): withdraw every consent and erase it at once."""
    from legal.models import ErasureReason
    from legal.registry import MARKER
    from legal.services.erasure import record_erasure

    at = at or timezone.now()
    withdraw_consents(email=email, via=ConsentSource.ERASURE_REQUEST, at=at)
    rows = list(
        Consent.objects.filter(email__iexact=email, erased_at__isnull=True).values_list(
            "pk", "order_id"
        )
    )
    if not rows:
        return 0
    Consent.objects.filter(pk__in=[pk for pk, _o in rows]).update(
        email=MARKER, user=None, order=None, erased_at=at
    )
    for pk, order_id in rows:
        record_erasure(
            category="consents",
            reason=ErasureReason.REQUEST,
            fields=["legal.Consent.email", "legal.Consent.user", "legal.Consent.order"],
            rows=1,
            note=f"legal.Consent #{pk}",
            order_id=order_id,
            now=at,
            request=request,
        )
    order_ids = {o for _pk, o in rows if o}
    if order_ids:
        from legal.models import PersonalDataRecord

        PersonalDataRecord.objects.filter(
            order_id__in=order_ids, category="consents", erased_at__isnull=True
        ).update(erased_at=at, keep_until=riga_date(at))
    return len(rows)


# --- Unsubscribe links and marketing emails (AP4.3) -------------------------------------------


def unsubscribe_token(consent: Consent) -> str:
    return tokens.sign(UNSUBSCRIBE_LINK, str(consent.pk))


def unsubscribe_url(email: str, purpose: str) -> str:
    """The signed, login-free link that withdraws `purpose` for `email` (R31, AP4.3).

    Refused when the person has never consented to `purpose`: nothing may be sent then."""
    _check_purpose(purpose)
    consent = (
        Consent.objects.filter(email__iexact=email.strip(), purpose=purpose, erased_at__isnull=True)
        .order_by("-given_at", "-pk")
        .first()
    )
    if consent is None:
        raise Refused("no_consent", "This person has not consented to this purpose.")
    path = reverse("legal-web:unsubscribe")
    return f"{settings.SITE_URL}{path}?token={unsubscribe_token(consent)}"


def consent_for_token(token: str) -> Consent | None:
    try:
        consent_id = tokens.unsign(UNSUBSCRIBE_LINK, token, max_age=UNSUBSCRIBE_MAX_AGE)
    except tokens.InvalidLink:
        return None
    if not consent_id.isdigit():
        return None
    return Consent.objects.filter(pk=int(consent_id)).first()


def unsubscribe(*, token: str, at: datetime | None = None) -> Consent | None:
    """The unsubscribe link: withdraws the purpose for that email at once."""
    consent = consent_for_token(token)
    if consent is None:
        return None
    if consent.erased_at is None:
        withdraw_consents(
            email=consent.email,
            purposes=[consent.purpose],
            via=ConsentSource.UNSUBSCRIBE_LINK,
            at=at,
        )
    return consent


def marketing_allowed(email: str, purpose: str) -> bool:
    """R31, GDPR Art 18, 21: a standing, confirmed consent and no restriction."""
    confirmed = active_consents(email, purpose).filter(confirmed_at__isnull=False)
    return confirmed.exists() and not is_restricted(email)


def queue_marketing_email(
    *, to: str, template: str, context: dict[str, Any], purpose: str = "marketing_email"
) -> outbox.OutboxMessage:
    """Queue a marketing email: only with consent, always with the unsubscribe link."""
    if not marketing_allowed(to, purpose):
        raise Refused("no_consent", "No standing consent for marketing to this person.")
    url = unsubscribe_url(to, purpose)
    subject, body = render_bilingual(template, {**context, "unsubscribe_url": url})
    footer = []
    for language in ("lv", "en"):
        with override(language):
            footer.append(_("Unsubscribe at once, no login needed: %(url)s") % {"url": url})
    payload = {
        "to": [to],
        "subject": subject,
        "body": body.rstrip() + "\n\n" + "\n".join(footer) + "\n",
        "template": template,
        "attachments": [],
    }
    return outbox.publish("email.send", payload)
