"""Personal data of conformity claims, declared into the retention policy (legal.registry):
category `claims` (KA10), kept like the contact data and held while a claim is open and
for 3 years after it closes (R28, the `holds.declare` below).

The staff's free-text reasons (every decision's, and why repair and replacement are
excluded, copied from its decision) may describe the person: they go with the claim."""

from __future__ import annotations

from django.db.models import Max

from legal import holds
from legal.registry import ERASE_MARKER, ExportedFile, declare, event_source, exportable

declare(
    "claims",
    "returns.Claim",
    order_path="order_id",
    fields={
        "description": ERASE_MARKER,
        "refund_iban": ERASE_MARKER,
        "refund_account_holder": ERASE_MARKER,
        "obstacle_reason": ERASE_MARKER,
    },
)
declare(
    "claims",
    "returns.ClaimDecision",
    order_path="claim__order_id",
    fields={"reason": ERASE_MARKER},
)
# The evidence: the stored name goes, and erasure deletes the file from storage after
# commit (legal.services.erasure).
declare(
    "claims",
    "returns.ClaimPhoto",
    order_path="claim__order_id",
    history=False,
    fields={"file": ERASE_MARKER},
)
exportable(
    "returns.Claim",
    key="claims",
    order_path="order_id",
    fields=[
        "id",
        "status",
        "channel",
        "remedy_requested",
        "discovered_on",
        "received_at",
        "answer_deadline",
        "answered_at",
        "late_notice",
        "is_warranty_claim",
        "minor_defect",
        "obstacle",
        "closed_at",
    ],
)
exportable(
    "returns.ClaimLine",
    key="lines",
    order_path="claim__order_id",
    within="returns.Claim",
    parent_path="claim_id",
    related={"sku": "order_line__sku", "name": "order_line__name_lv"},
    fields=["quantity", "allowance", "refund_amount"],
)
# R25: what was decided, when and why; who decided stays internal (as in the API).
exportable(
    "returns.ClaimDecision",
    key="decisions",
    order_path="claim__order_id",
    within="returns.Claim",
    parent_path="claim_id",
    fields=["kind", "from_status", "to_status", "decided_at", "amount", "data"],
)
# No customer endpoint serves a claim's photos back yet (only staff's admin page), so the
# export names each file without a link.
exportable(
    "returns.ClaimPhoto",
    key="photos",
    order_path="claim__order_id",
    within="returns.Claim",
    parent_path="claim_id",
    fields=["content_type", "size", "uploaded_at"],
    files={"file": ExportedFile(content_type="content_type", size="size")},
)


@event_source
def claim_events(order_ids: list[int]) -> dict:
    """KA7: emails follow a claim's receipt and its decisions; the latest one counts."""
    from legal.sql import ids_in
    from returns.models.claims import ClaimDecision

    return dict(
        ClaimDecision.objects.filter(ids_in(ClaimDecision, "claim__order_id", order_ids))
        .order_by()
        .values("claim__order_id")
        .annotate(latest=Max("decided_at"))
        .values_list("claim__order_id", "latest")
    )


def _open_claims():
    from django.db.models import Q

    return Q(closed_at__isnull=True)


# R28: a claim holds its order's personal data while open and 3 years after it closes
# (Commercial Law §406); legal.holds turns this into the sweep's SQL condition.
holds.declare(
    "claim",
    "returns.Claim",
    order_path="order_id",
    open=_open_claims,
    opened_at="received_at",
    closed_at="closed_at",
    reason="conformity claim #{pk}",
    fields=["pk"],
)
