"""Celery tasks of the legal app: thin, they call services."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def enforce_retention() -> int:
    """R29: the nightly retention sweep (the same service as `manage.py enforce_retention`).

    One order's error does not stop it (R28); the count of failures is logged (the
    orders' ids are in the service's own log line)."""
    from legal.services.retention import enforce_retention as sweep

    report = sweep()
    if report.failed:
        logger.error(
            "enforce_retention: %s order(s) and %s step(s) failed",
            len(report.failed_orders),
            len(report.failed_steps),
        )
    return report.total
