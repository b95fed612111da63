"""Deadline job of conformity claims (registered in shop.deadlines; run by run_deadlines)."""

from __future__ import annotations

from datetime import datetime

from returns.claims import services
from shop.deadlines import deadline_job


@deadline_job("overdue_claims")
def flag_overdue_claims(now: datetime) -> int:
    """R25: claims not answered within 15 working days are flagged for staff."""
    return services.flag_overdue_claims(now=now)
