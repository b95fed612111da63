"""Personal data of the returns app, declared into the retention policy (legal.registry);
one module per area. Loaded when the legal app is ready."""

from __future__ import annotations

from legal.registry import presence
from returns.claims import personal_data as _claims  # noqa: F401  conformity claims (KA10)
from returns.withdrawals import personal_data as _withdrawals  # noqa: F401  withdrawals (KA10)


@presence("claims")
def orders_with_claims_or_withdrawals(order_ids: list[int]) -> set[int]:
    """KA10 "claims" covers conformity claims and withdrawals: an order holds data of the
    category once it has either (one presence check per category)."""
    from legal.sql import ids_in
    from returns.models import Claim, Withdrawal

    found = set(
        Claim.objects.filter(ids_in(Claim, "order_id", order_ids)).values_list(
            "order_id", flat=True
        )
    )
    found.update(
        Withdrawal.objects.filter(ids_in(Withdrawal, "order_id", order_ids)).values_list(
            "order_id", flat=True
        )
    )
    return found
