"""R24 (T6.6): a replacement ships free. The outbound shipment itself belongs to delivery:
`delivery.services.create_replacement_shipment` creates a pending shipment of
the given order lines, without a fee and without touching the order's status (it was
delivered); staff register it with Omniva (or record its barcode) once it is packed."""

from __future__ import annotations

from collections.abc import Sequence

from returns.models.claims import Claim, ClaimLine


def create_free_replacement_shipment(*, claim: Claim, lines: Sequence[ClaimLine], by=None) -> int:
    """The pending outbound shipment of the replacement goods; returns its id."""
    from delivery.services import create_replacement_shipment

    shipment = create_replacement_shipment(
        order_id=claim.order_id,
        lines=[
            {
                "line_id": line.order_line_id,
                "sku": line.order_line.sku,
                "quantity": line.quantity,
            }
            for line in lines
        ],
        reason=f"Conformity claim #{claim.pk}: replacement (R24, free of charge)",
        by=by,
    )
    return shipment.pk
