"""The acknowledgement of a withdrawal statement (R19; T7.2.1, CRD Art 11(3), 11a):
the statement's content and the date and time it was received, Latvian with English,
queued through the outbox in the statement's transaction and sent after commit."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from returns.withdrawals import links
from shop.mail import queue_email


def acknowledgement_context(withdrawal) -> dict:
    """What the email says; the receipt page shows the same."""
    order = withdrawal.order
    return {
        "order": order,
        "withdrawal": withdrawal,
        "lines": list(withdrawal.lines.select_related("order_line").order_by("pk")),
        "received_at": timezone.localtime(withdrawal.received_at),
        "return_deadline": (
            timezone.localtime(withdrawal.return_deadline) if withdrawal.return_deadline else None
        ),
        "iban": withdrawal.iban,
        "shop": settings.SHOP,
    }


def withdrawal_received(*, withdrawal_id: int) -> None:
    from returns.models import Withdrawal

    withdrawal = Withdrawal.objects.select_related("order").get(pk=withdrawal_id)
    queue_email(
        to=withdrawal.order.email,
        template="withdrawal_received",
        context={
            **acknowledgement_context(withdrawal),
            "withdrawal_url": links.receipt_url(withdrawal.order, withdrawal.pk),
        },
        dedupe_key=f"withdrawal-received-{withdrawal.pk}",
    )
