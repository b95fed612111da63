"""Celery tasks of the delivery app: thin, they call the services."""

from celery import shared_task

from delivery.services import poll_tracking


@shared_task(ignore_result=True)
def poll_courier_tracking() -> dict[str, int]:
    """R14b: every minute (beat), ask Omniva about open shipments, within the rate bound."""
    report = poll_tracking()
    return {"asked": report.asked, "failed": report.failed, **dict(report.results)}
