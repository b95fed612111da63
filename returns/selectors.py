"""Reads of the returns app that other apps use.

R28: while a conformity claim is open, the order's personal data is under legal hold;
the retention work asks these selectors.
"""

from returns.claims.selectors import order_has_open_claim, orders_with_open_claims

__all__ = ["order_has_open_claim", "orders_with_open_claims"]
