"""The disclosure log (R27, T2.5, IP38): every time personal data leaves the shop for a third
party (Omniva as processor, Stripe, the bank, an authority), with the time, the recipient,
the categories and the purpose. Data never goes outside the EU/EEA (KP8).

    from legal.services.disclosures import record_disclosure
    record_disclosure(recipient="omniva", categories=["name", "phone", "email", "address"],
                      purpose="delivery of the order", order_id=order.pk,
                      reference=f"shipment {barcode}")

A sender that may hand over the same data again (a retried request that the recipient
answers with the same object, such as a Stripe PaymentIntent) passes `once=True`: the
disclosure with the same recipient, order and reference is logged the first time only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from legal.models import Disclosure, Recipient
from shop.errors import InvalidInput, Refused

# R27: Omniva receives only what delivery needs (categories or their fields).
OMNIVA_MAY_RECEIVE = {
    "identity",
    "contact",
    "delivery",
    "name",
    "phone",
    "email",
    "address",
    "parcel_machine",
}


def record_disclosure(
    *,
    recipient: str,
    categories: Iterable[str],
    purpose: str,
    order=None,
    order_id: int | None = None,
    reference: str = "",
    at: datetime | None = None,
    withheld_from_subject: bool = False,
    once: bool = False,
) -> Disclosure:
    """Log one disclosure; call it in the transaction that sends (or queues) the data.

    `once`: if this recipient already has the disclosure with this order and reference,
    that one is returned and nothing new is logged (the reference is then required)."""
    if recipient not in Recipient.values:
        raise InvalidInput.single(
            "recipient", "invalid_choice", "Unknown recipient: " + ", ".join(Recipient.values)
        )
    categories = [str(c) for c in categories]
    if not categories:
        raise InvalidInput.single("categories", "required", "Name the data disclosed.")
    if not purpose.strip():
        raise InvalidInput.single("purpose", "required", "Say why the data was disclosed.")
    if recipient == Recipient.OMNIVA:
        excess = sorted(set(categories) - OMNIVA_MAY_RECEIVE)
        if excess:
            raise Refused(
                "disclosure_not_needed",
                "Omniva receives only what delivery needs (name, phone, email, address or "
                "parcel machine).",
                categories=excess,
            )
    order_id = order.pk if order is not None else order_id
    reference = reference[:200]
    if once:
        if not reference:
            raise InvalidInput.single(
                "reference", "required", "A disclosure logged once needs its reference."
            )
        logged = Disclosure.objects.filter(
            recipient=recipient, order_id=order_id, reference=reference
        ).first()
        if logged is not None:
            return logged
    return Disclosure.objects.create(
        recipient=recipient,
        categories=categories,
        purpose=purpose.strip()[:200],
        disclosed_at=at or timezone.now(),
        order_id=order_id,
        reference=reference,
        withheld_from_subject=withheld_from_subject,
    )
