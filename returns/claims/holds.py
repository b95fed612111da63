"""R28: an open conformity claim puts the order's personal data under legal hold, and a
closed one keeps it until 3 years after it closed (Commercial Law §406). Registered with
`legal.holds` by the returns app (ReturnsConfig.ready)."""

from __future__ import annotations

from collections.abc import Iterator

from legal.holds import Hold
from legal.sql import ids_in
from returns.models.claims import Claim


def claim_holds(order_ids: list[int] | None) -> Iterator[Hold]:
    """A hold per claim, open or closed; `None` asks for every order with a claim."""
    claims = Claim.objects.all()
    if order_ids is not None:
        claims = claims.filter(ids_in(Claim, "order_id", order_ids))
    rows = claims.order_by("pk").values_list("pk", "order_id", "received_at", "closed_at")
    for claim_id, order_id, received_at, closed_at in rows.iterator(chunk_size=2000):
        yield Hold(
            order_id=order_id,
            reason=f"conformity claim #{claim_id}",
            opened_at=received_at,
            closed_at=closed_at,
        )


def refresh_ledger(order_id: int) -> None:
    """When a claim opens or closes the ledger shows the hold at once (legal.holds)."""
    from legal.services.ledger import recompute_ledger

    recompute_ledger(order_ids=[order_id])
