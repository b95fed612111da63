"""R28: an open conformity claim puts the order's personal data under legal hold, and a
closed one keeps it until 3 years after it closed (Commercial Law §406). The hold itself
is declared with `legal.holds` in `returns/claims/personal_data.py`."""

from __future__ import annotations


def refresh_ledger(order_id: int) -> None:
    """When a claim opens or closes the ledger shows the hold at once (legal.holds)."""
    from legal.services.ledger import recompute_ledger

    recompute_ledger(order_ids=[order_id])
