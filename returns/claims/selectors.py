"""Reads of conformity claims, among them the legal hold of orders with an open claim (R28)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from returns.models.claims import (
    OPEN_CLAIM_STATUSES,
    Claim,
    ClaimDecision,
    ClaimLine,
    ClaimPhoto,
)


def open_claims() -> QuerySet[Claim]:
    return Claim.objects.filter(status__in=OPEN_CLAIM_STATUSES)


def orders_with_open_claims() -> QuerySet:
    """R28: ids of the orders whose personal data is under legal hold because a claim about
    them is open (usable as a subquery: `Order.objects.exclude(pk__in=...)`)."""
    return open_claims().values_list("order_id", flat=True).distinct()


def order_has_open_claim(order_id: int) -> bool:
    """R28: is this order's personal data under legal hold because of an open claim?"""
    return open_claims().filter(order_id=order_id).exists()


def claim_with_details() -> QuerySet[Claim]:
    """One query per relation, whatever the number of lines, photos or decisions."""
    return Claim.objects.select_related("order").prefetch_related(
        Prefetch(
            "lines",
            queryset=ClaimLine.objects.select_related("order_line", "order_line__product").order_by(
                "pk"
            ),
        ),
        Prefetch("photos", queryset=ClaimPhoto.objects.order_by("pk")),
        Prefetch(
            "decisions",
            queryset=ClaimDecision.objects.select_related("refund").order_by("decided_at", "pk"),
        ),
    )
