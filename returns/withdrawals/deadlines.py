"""Deadline jobs of withdrawals (registered in shop.deadlines; run by run_deadlines).

Overdue withdrawal refunds are flagged by orders' `overdue_refunds` job (R21): every
withdrawal refund is a `Refund` row from the moment the statement arrives.
"""

from __future__ import annotations

from datetime import datetime

from returns.withdrawals import services
from shop.deadlines import deadline_job


@deadline_job("close_orders")
def close_finished_orders(now: datetime) -> int:
    """Delivered orders whose withdrawal period is over and nothing is open are closed."""
    return services.close_finished_orders(now=now)
