"""Legal holds placed by staff (R28): a dispute, an authority's request, a claim handled
outside the system. An open hold keeps the order's personal data; a closed one keeps it
until 3 years after it closed (Commercial Law §406)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from legal.models import HoldReason, LegalHold
from legal.services import ledger
from shop.errors import InvalidInput, Refused


def place_hold(
    *, order_id: int, reason: str, note: str = "", by=None, at: datetime | None = None
) -> LegalHold:
    if reason not in HoldReason.values:
        raise InvalidInput.single("reason", "invalid_choice", "Unknown reason for a hold.")
    with transaction.atomic():
        hold = LegalHold.objects.create(
            order_id=order_id,
            reason=reason,
            note=note[:300],
            opened_at=at or timezone.now(),
            opened_by=by if by is not None and by.is_authenticated else None,
        )
        ledger.recompute_ledger(order_ids=[order_id])
    return hold


def release_hold(*, hold_id: int, at: datetime | None = None) -> LegalHold:
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold_id)
        if hold.closed_at is not None:
            raise Refused("hold_closed", "This hold is already closed.")
        hold.closed_at = at or timezone.now()
        hold.save(update_fields=["closed_at"])
        ledger.recompute_ledger(order_ids=[hold.order_id])
    return hold
