"""Links to the withdrawal pages, for the emails (purpose-scoped order links, see
orders.links: the withdrawal button's link lives for the whole withdrawal period)."""

from __future__ import annotations

from orders.links import receipt_url, withdraw_url

__all__ = ["receipt_url", "withdraw_url"]
