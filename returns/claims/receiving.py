"""Receiving a conformity claim (R23, R25; T6.3, T6.4, T6.9).

`receive_claim` takes a claim through the API or entered by staff (oral or paper) with the
time it was received; refused when the goods are not delivered, after 2 years unless the
product's commercial warranty still runs (then taken as a warranty claim, T6.4), and for
business buyers outside a commercial warranty (R5: no consumer conformity regime). A
notice more than 2 months after discovery is flagged, never refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.files.base import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from orders.models import LineStatus, Order, OrderLine
from orders.services.locks import lock_order
from orders.services.refunds import normalise_iban
from returns import rules
from returns.claims import emails, photos
from returns.claims.holds import refresh_ledger
from returns.models.claims import (
    Claim,
    ClaimChannel,
    ClaimDecision,
    ClaimLine,
    ClaimPhoto,
    DecisionKind,
    Remedy,
)
from shop.calendar import riga_date
from shop.errors import InvalidInput, Refused
from shop.selectors import latvian_calendar

logger = logging.getLogger(__name__)

MAX_LINES = 50
MAX_DESCRIPTION = 5000
# Staff may enter a claim with the time it was received; a little clock skew is tolerated.
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class ClaimLineRequest:
    sku: str
    quantity: int


def receive_claim(
    *,
    order_id: int,
    lines: Sequence[ClaimLineRequest],
    description: str,
    discovered_on: date,
    remedy: Remedy | str,
    channel: ClaimChannel | str = ClaimChannel.API,
    received_at: datetime | None = None,
    photos_in: Sequence[File] = (),
    entered_by=None,
    iban: str = "",
    account_holder: str = "",
) -> Claim:
    """Record a claim and email the customer a receipt with the answer deadline (R25).

    Through the API the claim is received now; staff entering an oral or paper claim give
    the time it was received (T6.9), which starts the answer deadline.
    """
    now = timezone.now()
    check_choice("remedy", remedy, Remedy)
    check_choice("channel", channel, ClaimChannel)
    description = (description or "").strip()
    if not description:
        raise InvalidInput.single(
            "description", "required", _("Describe the defect and how it shows.")
        )
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput.single(
            "description",
            "max_length",
            _("At most %(n)d characters.") % {"n": MAX_DESCRIPTION},
        )
    requested = _merge_lines(lines)
    checked_photos = photos.check_photos(list(photos_in))
    iban = normalise_iban(iban) if iban else ""
    account_holder = (account_holder or "").strip()[:140]
    if channel == ClaimChannel.API or received_at is None:
        received_at = now
    elif timezone.is_naive(received_at):
        raise InvalidInput.single("received_at", "naive", _("Give the time with its time zone."))
    elif received_at > now + FUTURE_TOLERANCE:
        raise InvalidInput.single(
            "received_at", "in_future", _("The time received cannot be in the future.")
        )
    if discovered_on > riga_date(received_at):
        raise InvalidInput.single(
            "discovered_on",
            "after_claim",
            _("The defect cannot have been discovered after the claim was made."),
        )

    with transaction.atomic():
        order = lock_order(order_id)
        if order.delivered_at is None or received_at < order.delivered_at:
            raise Refused(
                "not_delivered",
                _("A conformity claim can be made once the goods have been delivered."),
                status=order.status,
            )
        if discovered_on < riga_date(order.delivered_at):
            raise InvalidInput.single(
                "discovered_on",
                "before_delivery",
                _("The defect cannot have been discovered before the goods were delivered."),
            )
        claimed = _order_lines_for(order, requested)
        is_warranty_claim = _regime(order, claimed, received_at)
        claim = Claim.objects.create(
            order=order,
            channel=channel,
            remedy_requested=remedy,
            description=description,
            discovered_on=discovered_on,
            received_at=received_at,
            answer_deadline=rules.claim_answer_deadline(received_at, latvian_calendar()),
            late_notice=rules.notice_is_late(discovered_on=discovered_on, notified_at=received_at),
            is_warranty_claim=is_warranty_claim,
            refund_iban=iban,
            refund_account_holder=account_holder,
            entered_by=entered_by,
            created_at=now,
        )
        claim_lines = ClaimLine.objects.bulk_create(
            [ClaimLine(claim=claim, order_line=line, quantity=qty) for line, qty in claimed]
        )
        for checked in checked_photos:
            photo = ClaimPhoto(
                claim=claim,
                content_type=checked.content_type,
                size=checked.size,
                uploaded_at=now,
            )
            stored = checked.stored_file()
            photo.file.save(stored.name, stored, save=False)
            photo.save()
        ClaimDecision.objects.create(
            claim=claim,
            kind=DecisionKind.RECEIVED,
            to_status=claim.status,
            reason=str(ClaimChannel(channel).label),
            decided_by=entered_by,
            decided_at=received_at,
            data={
                "channel": str(channel),
                "late_notice": claim.late_notice,
                "is_warranty_claim": is_warranty_claim,
                "photos": len(checked_photos),
            },
        )
        emails.claim_received(claim=claim, lines=claim_lines)
        refresh_ledger(order.pk)  # R28: the legal hold shows at once
    logger.info(
        "claim %s received for order %s (channel %s, warranty %s, late notice %s)",
        claim.pk,
        order.pk,
        channel,
        is_warranty_claim,
        claim.late_notice,
    )
    return claim


def check_choice(field: str, value: str, choices) -> None:
    if value not in choices.values:
        raise InvalidInput.single(
            field,
            "invalid_choice",
            _("Choose one of: %(values)s.") % {"values": ", ".join(choices.values)},
        )


def _merge_lines(lines: Sequence[ClaimLineRequest]) -> dict[str, int]:
    if not lines:
        raise InvalidInput.single(
            "lines", "required", _("Name the goods the claim is about (SKU and quantity).")
        )
    if len(lines) > MAX_LINES:
        raise InvalidInput.single("lines", "too_many", _("At most %(n)d lines.") % {"n": MAX_LINES})
    merged: dict[str, int] = {}
    for index, line in enumerate(lines):
        sku = (line.sku or "").strip()
        if not sku:
            raise InvalidInput.single(f"lines.{index}.sku", "required", _("The SKU is required."))
        if line.quantity < 1:
            raise InvalidInput.single(
                f"lines.{index}.quantity", "min_value", _("The quantity must be at least 1.")
            )
        merged[sku] = merged.get(sku, 0) + line.quantity
    return merged


def _order_lines_for(order: Order, requested: dict[str, int]) -> list[tuple[OrderLine, int]]:
    """The delivered order lines the claim is about: the line of each SKU still `ordered`
    (cancelled and unavailable lines were never delivered), at most its quantity."""
    delivered = {
        line.sku: line
        for line in order.lines.select_related("product").filter(status=LineStatus.ORDERED)
    }
    errors, claimed = [], []
    for sku, quantity in requested.items():
        line = delivered.get(sku)
        if line is None:
            errors.append(
                {
                    "field": "lines",
                    "code": "not_in_order",
                    "message": _("%(sku)s was not delivered with this order.") % {"sku": sku},
                }
            )
        elif quantity > line.quantity:
            errors.append(
                {
                    "field": "lines",
                    "code": "quantity_exceeds_order",
                    "message": _("Only %(n)d of %(sku)s were delivered.")
                    % {"n": line.quantity, "sku": sku},
                }
            )
        else:
            claimed.append((line, quantity))
    if errors:
        raise InvalidInput(errors)
    return claimed


def _regime(order: Order, claimed: list[tuple[OrderLine, int]], received_at: datetime) -> bool:
    """Which regime takes the claim; True when it is a commercial warranty claim.

    R23 (T6.3): a consumer has 2 years from delivery, to the day, Riga time.
    R23 (T6.4): after that, the product's commercial warranty, if it still runs.
    R5: a business buyer is not a consumer and has no consumer conformity regime; we take
    its claim only under a commercial warranty that still runs, and refuse it otherwise.
    """
    period_end = rules.conformity_period_end(order.delivered_at)
    if order.is_consumer and received_at <= period_end:
        return False
    uncovered, warranty_ends = [], []
    for line, _quantity in claimed:
        end = rules.warranty_end(order.delivered_at, line.product.warranty_months)
        if end is None or received_at > end:
            uncovered.append(line.sku)
        else:
            warranty_ends.append(end)
    if not uncovered:
        return True
    if not order.is_consumer:
        raise Refused(
            "not_a_consumer",
            _(
                "The order was placed by a business buyer: the consumer conformity rules do "
                "not apply, and these goods have no commercial warranty that still runs."
            ),
            skus=uncovered,
        )
    raise Refused(
        "claim_period_expired",
        _(
            "The two years for conformity claims ended and these goods have no commercial "
            "warranty that still runs."
        ),
        deadline=period_end,
        skus=uncovered,
    )
