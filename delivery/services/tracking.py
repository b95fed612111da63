"""The tracking poller (R14b): Omniva has no push, so a beat job asks its tracking API
about open shipments and feeds the answers to the same service as the webhook.

Bounded: one batch per minute (a cache key shared by all processes, given a shared
`CACHE_URL`), at most `OMNIVA_POLL_PER_MINUTE` requests in a batch, one request per
shipment and no retries (the next batch is the retry); least recently asked first.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from delivery.couriers import CourierError, get_courier
from delivery.models import OPEN_SHIPMENT_STATUSES, CourierEventChannel, Shipment
from delivery.services.courier_events import CourierEventData, apply_courier_event

logger = logging.getLogger(__name__)

POLL_WINDOW_KEY = "delivery:tracking-poll-window"
POLL_WINDOW_SECONDS = 60
DEFAULT_POLL_PER_MINUTE = 10


@dataclass
class PollReport:
    asked: int = 0
    failed: int = 0
    skipped: bool = False  # the courier client is off, or a batch already ran this minute
    results: Counter = field(default_factory=Counter)


def poll_tracking(*, now: datetime | None = None, limit: int | None = None) -> PollReport:
    report = PollReport()
    courier = get_courier()
    if not courier.can_track:
        report.skipped = True
        return report
    now = now or timezone.now()
    if not cache.add(POLL_WINDOW_KEY, now.isoformat(), timeout=POLL_WINDOW_SECONDS):
        report.skipped = True
        return report
    if limit is None:
        limit = int(getattr(settings, "OMNIVA_POLL_PER_MINUTE", DEFAULT_POLL_PER_MINUTE))
    if hasattr(courier, "attempts"):
        courier.attempts = 1  # stay within the budget: the next batch is the retry
    due = list(
        Shipment.objects.filter(status__in=OPEN_SHIPMENT_STATUSES, barcode__isnull=False)
        .order_by(F("last_polled_at").asc(nulls_first=True), "pk")
        .values_list("pk", "barcode")[: max(0, limit)]
    )
    for shipment_id, barcode in due:
        Shipment.objects.filter(pk=shipment_id).update(last_polled_at=now)
        report.asked += 1
        try:
            events = courier.track(barcode)
        except CourierError as exc:
            report.failed += 1
            logger.warning("tracking %s failed: %s", barcode, exc.message)
            if exc.status in (401, 403):
                break  # wrong credentials: every further request would fail the same way
            continue
        for event in sorted(events, key=lambda e: e.occurred_at):
            result = apply_courier_event(
                event=CourierEventData(
                    event_id=event.event_id,
                    barcode=barcode,
                    event=event.event,
                    occurred_at=event.occurred_at,
                    location=event.location,
                    reason=event.reason,
                    payload=event.raw,
                ),
                channel=CourierEventChannel.POLLER,
            )
            report.results[result.result] += 1
    return report
