"""Customer emails of conformity claims, queued through the outbox (sent after commit),
Latvian with English (shop.mail)."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.utils import timezone

from orders import links
from returns.models.claims import Claim, ClaimDecision, ClaimLine
from shop.mail import queue_email


def _base(claim: Claim) -> dict:
    order = claim.order
    return {
        "claim": claim,
        "order": order,
        "shop": settings.SHOP,
        "order_url": links.order_url(order),
        "received_at": timezone.localtime(claim.received_at),
        "answer_deadline": timezone.localtime(claim.answer_deadline),
    }


def claim_received(*, claim: Claim, lines: Sequence[ClaimLine]) -> None:
    """R25: the receipt, with what was claimed, when it was received and the answer date."""
    queue_email(
        to=claim.order.email,
        template="claim_received",
        context={**_base(claim), "lines": lines},
        dedupe_key=f"claim-received-{claim.pk}",
    )


def claim_decided(*, claim: Claim, decision: ClaimDecision) -> None:
    """R24: each decision, with its reason and any money coming back."""
    lines = list(claim.lines.select_related("order_line").order_by("pk"))
    queue_email(
        to=claim.order.email,
        template="claim_decision",
        context={**_base(claim), "decision": decision, "lines": lines, "refund": decision.refund},
        dedupe_key=f"claim-decision-{decision.pk}",
    )
