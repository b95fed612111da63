"""Celery tasks of the legal app: thin, they call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def enforce_retention() -> int:
    """R29: the nightly retention sweep (the same service as `manage.py enforce_retention`)."""
    from legal.services.retention import enforce_retention as sweep

    return sweep().total
